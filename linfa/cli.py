"""The ``linfa`` command line: ``linfa check``, ``linfa list``, ``linfa replay``, and extensions.

::

    linfa check [IDS ...] [--instances N] [--seed S] [--json PATH] [--fast] [--no-derivations] [--quiet]
    linfa list [IDS ...] [--verbose] [--json]
    linfa replay PATH

``linfa check`` runs the catalogue (:mod:`linfa.theorems`): each entry's
derivation (:mod:`linfa.symbolic`) and its numerical check on seeded random
instances. ``IDS`` are entry ids (``saxe2014.mode_dynamics``) or paper keys
(``saxe2014``); none means all. It prints a table and exits with

* ``0`` when every selected claim met its criterion (a theorem without a
  counterexample, an empirical claim not rejected by the one-sided binomial
  test of its stated fraction at level 1e-3, an existential claim with a
  witness found, and no derivation failed); instances a check could not
  decide are reported as *inconclusive* with the reason, and do not fail;
* ``1`` when some claim did not (or its check raised);
* ``2`` on a usage or input error (unknown id, bad option, unreadable or
  unwritable file, unreachable scheduler);
* ``3`` on an internal error (a bug in linfa: please report the traceback).

Every sub-command uses the same codes (see :data:`EXIT_CODES`); errors go to
stderr, results to stdout. Output closed early (``linfa list | head``) ends
quietly.

``--fast`` is a quick numerical run (each entry's smaller default number of
instances, no derivations); an empirical entry still runs enough instances that
a claim holding on half the claimed fraction is rejected with probability >= 0.8.
``--json PATH`` writes the results as JSON following :data:`JSON_SCHEMA`.

``linfa --plugin MODULE[:FUNCTION] COMMAND ...`` imports ``MODULE`` (an
importable module name; repeatable) and calls ``FUNCTION()`` of it, if given,
before running ``COMMAND``: a plug-in that registers its own rules
(:func:`linfa.rules.register`) and catalogue entries
(:func:`linfa.theorems.register`) makes them available to ``linfa check``,
``linfa list``, ``linfa replay`` and ``linfa sweep``. Only what is named on the
command line is imported, never anything named in a file being read
(:mod:`linfa.plugins`; worker processes load the same plug-ins).

Sub-commands are added by modules exposing ``add_parser(subparsers)`` that
sets ``func`` (``args.func(args) -> int``) as a parser default: the built-in
ones here, and those listed in :data:`EXTENSIONS` (``linfa reproduce``,
``linfa sweep``), which are skipped if their module does not exist.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

from linfa import plugins
from linfa._validate import output_parent_problem
from linfa.sweep.cli import non_negative_int, positive_int

__all__ = ["EXIT_CODES", "EXTENSIONS", "JSON_SCHEMA", "UsageError", "build_parser", "main", "render_table"]

#: Modules providing further sub-commands through ``add_parser(subparsers)``.
EXTENSIONS: tuple[str, ...] = ("linfa.reproduce", "linfa.sweep")

#: Exit status of every ``linfa`` command.
EXIT_CODES: dict[int, str] = {
    0: "success: every selected claim holds (every instance recorded without failure)",
    1: "a claim failed (or a check, instance or predicate reported a failure)",
    2: "usage or input error: bad option, unknown id, unreadable or unwritable file, unreachable scheduler",
    3: "internal error: a bug in linfa (the traceback is printed; please report it)",
    4: "the cluster was lost (Dask scheduler gone, or no workers within the timeout); a sweep's results file "
       "is intact and the same command resumes it",
    130: "interrupted (Ctrl-C or SIGTERM); a sweep resumes when run again",
    141: "the reader of the output went away (e.g. piped into head); ends quietly",
}


class UsageError(Exception):
    """A user error found by a command: printed as ``linfa CMD: message`` on stderr, exit status 2."""


def _epilog() -> str:
    return "exit status:\n" + "\n".join(f"  {code:<4} {what}" for code, what in EXIT_CODES.items())


def writable_file(path: str, what: str) -> None:
    """Raise :class:`UsageError` unless ``path`` can be written in an existing directory; nothing is left behind.

    Called before a long computation whose results go to ``path``. Like
    ``linfa sweep --out``, it creates no directory.
    """
    target = os.path.abspath(path)
    if os.path.isdir(target):
        raise UsageError(f"{what}: {path} is a directory, expected a file path")
    problem = output_parent_problem(path)
    if problem is not None:
        raise UsageError(f"{what}: {problem}")
    try:
        existed = os.path.exists(target)
        with open(target, "a", encoding="utf-8"):
            pass
        if not existed:
            os.remove(target)
    except OSError as exc:
        raise UsageError(f"{what}: cannot write {path} ({exc.strerror or exc})") from None


def writable_dir(path: str, what: str) -> None:
    """Raise :class:`UsageError` unless ``path`` is (or can be made) a writable directory."""
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UsageError(f"{what}: cannot write into the directory {path} ({exc.strerror or exc})") from None


_NUMBER_OR_NULL = {"type": ["number", "null"]}
_SEED_INFO = {
    "type": "object",
    "required": ["entropy", "spawn_key", "group", "index", "margin"],
    "properties": {
        "entropy": {"type": "integer", "minimum": 0},
        "spawn_key": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "group": {"type": "integer", "minimum": 0},
        "index": {"type": "integer", "minimum": 0},
        "margin": {"type": "number"},
    },
}

#: JSON Schema (draft 2020-12) of ``linfa check --json`` output.
JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "linfa check results",
    "type": "object",
    "required": ["linfa_version", "seed", "fast", "instances", "seconds", "passed", "results"],
    "additionalProperties": False,
    "properties": {
        "linfa_version": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0},
        "fast": {"type": "boolean"},
        "instances": {"type": ["integer", "null"], "minimum": 1,
                      "description": "--instances, or null for each entry's default"},
        "seconds": {"type": "number", "minimum": 0},
        "passed": {"type": "boolean", "description": "every selected claim met its criterion"},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "paper", "title", "kind", "statement", "reference", "hypotheses", "tolerance",
                             "tolerance_reason", "required_fraction", "instances", "holding", "passed",
                             "status", "inconclusive", "inconclusive_reasons", "p_value", "fraction_lower_bound",
                             "worst_margin", "seconds", "witness", "failures", "derivation", "error", "details"],
                "properties": {
                    "id": {"type": "string", "pattern": r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$"},
                    "paper": {"type": "string"},
                    "title": {"type": "string"},
                    "kind": {"enum": ["theorem", "empirical", "existential"]},
                    "statement": {"type": "string", "description": "LaTeX"},
                    "reference": {"type": "string"},
                    "hypotheses": {"type": "array", "items": {"type": "string"}},
                    "tolerance": {"type": "number"},
                    "tolerance_reason": {"type": "string"},
                    "required_fraction": {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1},
                    "instances": {"type": "integer", "minimum": 0},
                    "holding": {"type": "integer", "minimum": 0},
                    "passed": {"type": "boolean", "description": "no counterexample, error or rejection"},
                    "status": {"enum": ["holds", "fails", "inconclusive"]},
                    "inconclusive": {"type": "integer", "minimum": 0,
                                     "description": "instances that could not be decided (never counterexamples)"},
                    "inconclusive_reasons": {"type": "array", "items": {"type": "string"}},
                    "p_value": {**_NUMBER_OR_NULL,
                                "description": "empirical: one-sided binomial P(K <= holding | claimed fraction)"},
                    "fraction_lower_bound": {**_NUMBER_OR_NULL,
                                             "description": "empirical: Clopper-Pearson lower bound, level 1e-3"},
                    "worst_margin": {**_NUMBER_OR_NULL,
                                     "description": "smallest margin; the best witness's if existential"},
                    "seconds": {"type": "number", "minimum": 0},
                    "witness": {"oneOf": [{"type": "null"}, _SEED_INFO]},
                    "failures": {"type": "array", "items": _SEED_INFO, "maxItems": 5},
                    "derivation": {
                        "type": "object",
                        "required": ["name", "status"],
                        "additionalProperties": False,
                        "properties": {"name": {"type": ["string", "null"]}, "claim": {"type": ["string", "null"]},
                                       "status": {"type": "string"}},
                    },
                    "error": {"type": ["string", "null"]},
                    "details": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"min": {"type": "number"}, "median": {"type": "number"},
                                           "max": {"type": "number"}},
                        },
                    },
                },
            },
        },
    },
}


# ------------------------------------------------------------------------ check
def _add_check(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "check", help="check the catalogue of published claims on random instances",
        description="Run each claim's derivation and numerical check; print a table; exit 1 if a claim fails.",
    )
    p.add_argument("ids", nargs="*", metavar="ID", help="entry ids or paper keys (default: all; see `linfa list`)")
    p.add_argument("--instances", type=_positive_int, default=None, metavar="N",
                   help="instances per entry (default: each entry's own)")
    p.add_argument("--seed", type=_non_negative_int, default=0, metavar="S", help="run seed (default: 0)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON to PATH")
    p.add_argument("--fast", action="store_true",
                   help="a quick numerical run: fewer instances per entry, derivations skipped")
    p.add_argument("--no-derivations", action="store_true", help="skip the symbolic derivations (no sympy)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    from linfa.sweep.cli import add_workers_arguments

    add_workers_arguments(p)
    p.set_defaults(func=_run_check)


_positive_int = positive_int
_non_negative_int = non_negative_int


def _fmt_margin(x: float) -> str:
    return "—" if x != x else f"{x:.3g}"


def render_table(results: Sequence[Any]) -> str:
    """The table ``linfa check`` prints, one row per :class:`~linfa.theorems.Result`."""
    header = ("id", "paper", "kind", "instances", "holds", "worst margin", "seconds", "derivation")
    rows = []
    for r in results:
        t = r.theorem
        if r.error is not None:
            holds = "ERROR"
        elif r.status == "inconclusive":
            holds = f"inconclusive ({r.holding}/{r.instances}, {r.inconclusive} undecided)"
        else:
            undecided = f", {r.inconclusive} undecided" if r.inconclusive else ""
            holds = f"{'yes' if r.passed else 'NO'} ({r.holding}/{r.instances}{undecided})"
        if r.derivation.startswith("checked at sizes ("):
            deriv = "at sizes*"  # some steps exact only at stated sizes (footnote below the table)
        else:
            deriv = {"none": "—", "skipped": "skipped", "verified": "verified"}.get(r.derivation, r.derivation[:24])
        rows.append((t.id, t.paper, t.kind, str(r.instances), holds, _fmt_margin(r.worst_margin),
                     f"{r.seconds:.2f}", deriv))
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
    right = {3, 5, 6}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                                  strict=True)))

    out = [line(header), line(["-" * w for w in widths])]
    out += [line(row) for row in rows]
    prefix = "checked at sizes ("
    starred = {(f"{r.theorem.derivation} ({r.theorem.derivation_claim})" if r.theorem.derivation_claim
                else str(r.theorem.derivation)): r.derivation[len(prefix):-1]
               for r in results if r.derivation.startswith(prefix)}
    if starred:
        out.append("* checked at sizes, not verified for every size: some steps proved exactly only at the "
                   "stated sizes (the rest dimension-free):")
        out += [f"    {name}: {scope}" for name, scope in starred.items()]
    return "\n".join(s.rstrip() for s in out)


def _run_check(args: argparse.Namespace) -> int:
    from linfa import __version__, theorems

    try:
        chosen = theorems.catalogue(list(args.ids))
    except KeyError as exc:
        print(f"linfa check: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.json:
        writable_file(args.json, "--json")
    from tqdm import tqdm

    start = time.perf_counter()
    results = []
    run_kwargs = {"instances": args.instances, "seed": args.seed, "fast": args.fast,
                  "derivation": not (args.no_derivations or args.fast)}
    bar = tqdm(total=len(chosen), desc="linfa check", unit="claim", file=sys.stderr,
               disable=True if args.quiet else None, leave=False)
    from linfa.sweep.cli import executor_from_args

    try:
        executor = executor_from_args(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if executor is not None:
        # one entry per task on local processes or a Dask cluster; same results as serial
        from linfa.sweep.checks import run_checks
        from linfa.sweep.executors import ClusterLost

        try:
            for result in run_checks(chosen, executor=executor, **run_kwargs):
                bar.set_postfix_str(result.theorem.id)
                bar.update()
                results.append(result)
        except ClusterLost as exc:
            bar.close()
            print(f"linfa check: error: the Dask cluster was lost: {exc}; {len(results)} of {len(chosen)} "
                  "entries were checked; run the command again", file=sys.stderr)
            return 4
        finally:
            executor.close()
    else:
        for thm in chosen:
            bar.set_postfix_str(thm.id)
            results.append(theorems.run(thm, **run_kwargs))
            bar.update()
    bar.close()
    elapsed = time.perf_counter() - start
    print(render_table(results))
    failed = [r for r in results if not r.passed]
    for r in results:
        if r.inconclusive:
            print(f"INCONCLUSIVE {r.theorem.id}: {r.inconclusive}/{r.instances} undecided: "
                  + ("; ".join(r.inconclusive_reasons) or "no reason given"))
    for r in failed:
        why = r.error or (f"derivation {r.derivation}" if r.derivation.startswith("failed") else None)
        if why is None:
            where = r.failures[0] if r.failures else None
            test = f" (binomial p = {r.p_value:.2g} < 1e-3)" if r.p_value is not None else ""
            why = (f"{r.holding}/{r.instances} held{test}" + (f"; first failure: group {where['group']}, index "
                                                         f"{where['index']}, margin {where['margin']:.3g}"
                                                         if where else ""))
        print(f"FAILED {r.theorem.id}: {why}  (replay: linfa{plugins.cli_options()} check {r.theorem.id} "
              f"--seed {args.seed}"
              + (f" --instances {args.instances}" if args.instances else "") + ")")
    print(f"{len(results) - len(failed)}/{len(results)} claims hold; {elapsed:.1f} s (seed {args.seed})")
    if args.json:
        doc = {
            "linfa_version": __version__,
            "seed": args.seed,
            "fast": bool(args.fast),
            "instances": args.instances,
            "seconds": elapsed,
            "passed": not failed,
            "results": [r.to_json() for r in results],
        }
        text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
        try:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            # checked before running, so rare (disk full, path removed): keep the results on stderr
            sys.stderr.write(text)
            raise UsageError(f"--json: cannot write {args.json} ({exc.strerror or exc}); "
                             "the JSON results were written to stderr above") from None
    return 1 if failed else 0


# ------------------------------------------------------------------------- list
def _add_list(subparsers: Any) -> None:
    p = subparsers.add_parser("list", help="list the catalogue", description="List the catalogue's entries.")
    p.add_argument("ids", nargs="*", metavar="ID", help="entry ids or paper keys (default: all)")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also print statement, reference, hypotheses and the fact checked, with its text")
    p.add_argument("--json", action="store_true", help="print the entries as a JSON array instead")
    p.set_defaults(func=_run_list)


def _run_list(args: argparse.Namespace) -> int:
    from linfa import theorems

    try:
        chosen = theorems.catalogue(list(args.ids))
    except KeyError as exc:
        print(f"linfa list: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.json:
        entries = [{**t.to_json(), "derivation": t.derivation, "fact": t.fact} for t in chosen]
        print(json.dumps(entries, indent=2))
        return 0
    width = max((len(t.id) for t in chosen), default=0)
    for t in chosen:
        print(f"{t.id:<{width}}  {t.kind:<11}  {t.title}")
        if args.verbose:
            print(f"    statement:  {t.statement}")
            print(f"    reference:  {t.reference}")
            for h in t.hypotheses:
                print(f"    hypothesis: {h}")
            print(f"    tolerance:  {t.tolerance:g} ({t.tolerance_reason})")
            if t.kind == "empirical":
                print(f"    must hold on at least {t.fraction:.0%} of instances")
            if t.derivation:
                claim = f", claim {t.derivation_claim!r}" if t.derivation_claim else ""
                print(f"    derivation: linfa.symbolic.derivations.{t.derivation}{claim}")
            if t.fact is not None:
                print(_fact_text(t.fact))
    return 0


def _fact_text(number: int) -> str:
    """The fact as ``linfa list -v`` prints it: number, title, source, then the text wrapped and indented."""
    import textwrap

    from linfa.facts import get

    fact = get(number)
    # equations (the `...` spans) are not broken across lines: their spaces are non-breaking while wrapping
    parts = fact.text.split("`")
    text = "".join(p.replace(" ", "\u00a0") if i % 2 else p for i, p in enumerate(parts))
    body = textwrap.fill(text, width=100, initial_indent=" " * 8, subsequent_indent=" " * 8).replace("\u00a0", " ")
    return f"    fact {fact.number} (docs/design.md): {fact.title} ({fact.source})\n{body}"


# ----------------------------------------------------------------------- replay
def _add_replay(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay", help="re-run a saved instance (a counterexample or a catalogue instance)",
        description="Load an instance .npz written by linfa.testing.conjecture or Instance.save and re-check it.",
    )
    p.add_argument("path", metavar="PATH", help="the .npz file")
    p.add_argument("--predicate", default=None, metavar="MODULE:NAME",
                   help="the conjecture's predicate to import and run (the file's recorded one is only shown, "
                        "never imported, unless --trust)")
    p.add_argument("--trust", action="store_true",
                   help="import and run the predicate named inside the file (only for files you trust)")
    p.set_defaults(func=_run_replay)


def _run_replay(args: argparse.Namespace) -> int:
    from linfa.theorems import Instance, get

    try:
        inst = Instance.load(args.path)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(str(exc)) from None
    recorded = inst.params.get("predicate")
    if "predicate" in inst.params or args.predicate:
        import warnings

        from linfa.testing import TrustedPredicateWarning, replay

        if args.predicate is None and not args.trust:
            if not isinstance(recorded, str):
                raise UsageError(f"{args.path} records no importable predicate; name one with --predicate MODULE:NAME")
            raise UsageError(
                f"{args.path} asks to import and run the predicate {recorded!r}. linfa does not run code named "
                "inside a data file. If you know that function, name it:\n"
                f"    linfa replay {shlex.quote(args.path)} --predicate {shlex.quote(recorded)}\n"
                "or, if you trust the file and every module importable from here, add --trust")
        if args.predicate is not None and isinstance(recorded, str) and args.predicate != recorded:
            print(f"linfa replay: note: using {args.predicate!r}, not {recorded!r} recorded in the file",
                  file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TrustedPredicateWarning)  # the CLI warns itself, once
            if args.predicate is None:
                print(f"linfa replay: warning: importing and running {recorded!r} named inside {args.path} "
                      "(--trust)", file=sys.stderr)
            try:
                outcome = replay(inst, predicate=args.predicate, trust=bool(args.trust))
            except (ValueError, TypeError) as exc:
                raise UsageError(str(exc)) from None
        print(outcome)
        return 0 if outcome.holds else 1
    try:
        thm = get(inst.name)
    except KeyError as exc:
        raise UsageError(f"{args.path}: {exc.args[0]}") from None
    try:
        verdict = thm.check(inst)
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(f"{args.path}: not an instance of {thm.id} ({exc})") from None
    holds = bool(verdict.holds.all())
    print(f"{thm.id}: holds={holds} margin={float(verdict.margin.min()):.6g}")
    for k, v in verdict.details.items():
        print(f"  {k} = {v}")
    return 0 if holds else 1


# ------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    """The ``linfa`` argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(prog="linfa", description="Verify theory about learning in linear networks.",
                                     epilog=_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    from linfa import __version__

    parser.add_argument("--version", action="version", version=f"linfa {__version__}")
    parser.add_argument("--plugin", action="append", default=[], metavar="MODULE[:FUNCTION]",
                        help="import MODULE (and call FUNCTION()) first, to register its rules and catalogue "
                             "entries; repeatable")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_check(subparsers)
    _add_list(subparsers)
    _add_replay(subparsers)
    for name in EXTENSIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        add = getattr(module, "add_parser", None)
        if callable(add):
            add(subparsers)
    for sub in subparsers.choices.values():
        if sub.epilog is None:
            sub.epilog = _epilog()
            if sub.formatter_class is argparse.HelpFormatter:
                sub.formatter_class = argparse.RawDescriptionHelpFormatter
    return parser


def _quiet_stdout() -> None:
    """After a broken pipe: send what is left of stdout to /dev/null so that exiting prints nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout replaced (tests) or already closed
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``linfa`` script and ``python -m linfa``; returns the exit status.

    See :data:`EXIT_CODES`. A user error prints one line on stderr (no
    traceback) and returns 2; an unexpected exception is a bug: its traceback
    goes to stderr and the status is 3.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    for spec in args.plugin:
        try:
            plugins.load(spec)
        except (plugins.PluginError, TypeError) as exc:
            print(f"linfa: error: --plugin: {exc}", file=sys.stderr)
            return 2
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    command = f"linfa {args.command}" if getattr(args, "command", None) else "linfa"
    try:
        status: int = args.func(args)
        sys.stdout.flush()
    except UsageError as exc:
        print(f"{command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _quiet_stdout()
        return 141  # as if killed by SIGPIPE, like other tools whose reader went away
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        import traceback

        traceback.print_exc()
        print(f"{command}: internal error (a bug in linfa; please report the traceback above)", file=sys.stderr)
        return 3
    return status
