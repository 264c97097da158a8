r"""Derivations as lists of self-verifying steps.

A :class:`Step` states a relation between two sympy expressions, says *why*
it holds (``reason``: substitution of the flow, product rule, an earlier
step, a named lemma) and *how it is checked* (``method``):

``"expand"``
    exact: ``lhs - rhs`` expands to zero — a polynomial identity in the
    entries of explicit matrices (in the stated dimensions), or, for
    :class:`sympy.MatrixSymbol` expressions, an identity of the free matrix
    algebra (dimension-free; products, transposes and inverses).
``"simplify"``
    exact: ``cancel``/``simplify`` of ``lhs - rhs`` is zero (rational,
    exponential and radical expressions).
``"auto"`` (default)
    ``"expand"``, then ``"simplify"`` if expansion alone does not decide.
``"definition"``
    introduces a name: ``lhs`` is a placeholder (a symbol, matrix symbol or
    explicit matrix of symbols not occurring in ``rhs``) that later steps may
    use for ``rhs``; there is nothing to prove (:meth:`Derivation.define`).
``"numeric"``
    *not a proof*: the relation is tested at random real points (scalar
    symbols drawn according to their sympy assumptions, matrix symbols as
    Gaussian matrices). Use only where exact checking fails; the report
    labels it.

Inequalities (``">="``, ``">"``, ``"<="``, ``"<"``) are checked exactly by a
*witness*: ``lhs - rhs`` (or ``rhs - lhs``) is shown equal to ``witness`` by
the identity check, and ``witness`` is non-negative (positive) by sympy's
sign assumptions (a sum of squares with non-negative coefficients, say).
Without a witness the difference itself must be manifestly signed.
``"psd"`` states ``lhs ⪰ rhs`` for matrices, with a witness ``G`` such that
``lhs - rhs = G G^T`` exactly.

``given`` lists substitutions ``(old, new)`` applied to both sides before the
check: hypotheses such as :math:`B^TB = cI` or :math:`A = BM`. They are part
of the step and are printed with it.

Steps form a *chain*. A step may ``define`` a placeholder (a symbol,
matrix symbol or explicit matrix of symbols standing for a rate, a product,
a scalar) and later steps list it in ``uses``: before a step is checked,
each used ``"="`` step replaces its placeholder by its right-hand side, and
each used sign step (``placeholder >= 0``, ``> 0``, ``<= 0``, ``< 0``) lends
the placeholder that sign. A derivation ends in *claim* steps
(:meth:`Derivation.conclude`), each checked from earlier steps, and every
other step must be used on the way to a claim. So a claim holds only
through its premises: dropping a middle step (:meth:`Derivation.without`)
leaves a placeholder unexplained and the claim fails.

A :class:`Derivation` is an ordered list of steps plus a statement,
hypotheses, numerical cross-checks (see :mod:`linfa.symbolic.numeric`) and
counterexamples showing that an implicit hypothesis is needed.
:meth:`Derivation.verify` returns a :class:`Report`; a failed step is named
in it. Derivations render as LaTeX and Markdown in notebooks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp
from sympy.matrices.expressions.matexpr import MatrixElement

from linfa.errors import UnknownNameError

__all__ = [
    "Counterexample",
    "Derivation",
    "Report",
    "Step",
    "StepResult",
    "VerificationError",
]

RELATIONS = ("=", ">=", ">", "<=", "<", "psd")
METHODS = ("auto", "expand", "simplify", "numeric", "definition")
_LATEX_REL = {"=": "=", ">=": r"\geq", ">": ">", "<=": r"\leq", "<": "<", "psd": r"\succeq"}


class VerificationError(AssertionError):
    """A derivation step (or cross-check) did not verify; the message names it."""


# ------------------------------------------------------------------ checking
def _is_matrix_expr(e: Any) -> bool:
    return isinstance(e, sp.MatrixExpr) and not isinstance(e, sp.MatrixBase)


def _flatten(e: Any) -> Any:
    """Canonical expanded form: products flattened so that ``subs`` finds sub-products."""
    if _is_matrix_expr(e):
        return sp.expand(e.doit())
    if isinstance(e, sp.MatrixBase):
        return sp.ImmutableMatrix(e)
    return sp.sympify(e)


def _substitute(e: Any, given: Sequence[tuple[Any, Any]]) -> Any:
    e = _flatten(e)
    for old, new in given:
        e = _flatten(e.subs(old, new))
    return e


def _zero_by(e: Any, how: str) -> bool:
    """Whether ``e`` is identically zero, by expansion or by simplification."""
    if _is_matrix_expr(e):
        z = sp.expand(e.doit())
        # dimension-free: expansion decides (simplify is rarely stronger on matrix expressions)
        return bool(z == 0 or isinstance(z, sp.ZeroMatrix))
    if isinstance(e, sp.MatrixBase):
        return all(_zero_by(x, how) for x in e)
    e = sp.sympify(e)
    if how == "expand":
        return bool(sp.expand(e) == 0)
    if sp.cancel(sp.together(e)) == 0:
        return True
    return bool(sp.simplify(e) == 0)


def _identity(e: Any, method: str) -> tuple[bool, str]:
    """Check ``e == 0`` exactly; return (ok, description of the check used)."""
    free = _is_matrix_expr(e)
    where = "dimension-free (matrix-symbol algebra)" if free else "exact"
    if method in ("auto", "expand") and _zero_by(e, "expand"):
        return True, f"{where}: identity after expansion"
    if method in ("auto", "simplify") and not free and _zero_by(e, "simplify"):
        return True, f"{where}: simplify(lhs - rhs) = 0"
    return False, f"{where}: lhs - rhs does not reduce to 0"


def _placeholder(step: Step) -> Any:
    """What ``step`` defines for later steps (its ``defines``, else a symbol-like ``lhs``)."""
    if step.defines is not None:
        return step.defines
    lhs = step.lhs
    if isinstance(lhs, sp.Symbol | sp.MatrixSymbol) or (
        isinstance(lhs, sp.MatrixBase) and all(isinstance(x, sp.Symbol) for x in lhs)
    ):
        return lhs
    raise ValueError(
        f"uses: step {step.name!r} defines no placeholder (give it defines=..., or a symbol as lhs)"
    )


_SIGNED = {">=": {"nonnegative": True}, ">": {"positive": True},
           "<=": {"nonpositive": True}, "<": {"negative": True}}


def _premise_rules(premises: Sequence[Step]) -> list[tuple[Any, Any]]:
    """Rewrite rules ``(placeholder, value)`` lent by ``premises``.

    An ``"="`` premise replaces its placeholder by its ``rhs``. A sign premise
    ``p >= 0`` (``> 0``, ``<= 0``, ``< 0``) replaces the scalar symbol ``p`` by
    a fresh symbol carrying that sign, so that sign checks can rely on it.
    """
    rules = []
    for step in premises:
        p = _placeholder(step)
        if step.relation == "=":
            rules.append((p, step.rhs))
        elif step.relation in _SIGNED and _is_zero_like(step.rhs) and isinstance(p, sp.Symbol):
            rules.append((p, sp.Symbol(f"{p.name}", real=True, **_SIGNED[step.relation])))
        else:
            raise ValueError(
                f"uses: step {step.name!r} ({step.relation}) can be used only as an equation or as "
                "the sign of a scalar placeholder (placeholder <relation> 0)"
            )
    return rules


def _rewrite(e: Any, rules: Sequence[tuple[Any, Any]]) -> Any:
    """Apply the rewrite rules until nothing changes (explicit matrices entry by entry).

    A rule's value may contain other rules' placeholders, so the rules are
    applied repeatedly, at most once more than there are rules.
    """
    if e is None or not rules:
        return e
    for _ in range(len(rules) + 1):
        before = e
        for old, new in rules:
            e = _rewrite_one(e, old, new)
        if e == before:
            break
    return e


def _rewrite_one(e: Any, old: Any, new: Any) -> Any:
    if isinstance(old, sp.MatrixBase):
        new = sp.Matrix(new) if not isinstance(new, sp.MatrixBase) else new
        mapping = {o: n for o, n in zip(old, new, strict=True) if isinstance(o, sp.Symbol)}
        return e.xreplace(mapping) if hasattr(e, "xreplace") else e
    if isinstance(old, sp.MatrixSymbol):
        if not hasattr(e, "subs"):
            return e
        out = e.xreplace({old: new})  # the placeholder is an atom: exact replacement suffices
        if out != e and not isinstance(out, sp.MatrixExpr | sp.MatrixBase) and out.has(MatrixElement):
            out = out.doit()  # entries of a substituted product, e.g. (c X)[0, 0] -> c X[0, 0]
        return out
    if isinstance(e, sp.MatrixBase):
        return e.xreplace({old: new})
    return sp.sympify(e).xreplace({old: new})


def _sign_ok(w: Any, strict: bool) -> bool:
    w = sp.sympify(w)
    return bool(w.is_positive) if strict else bool(w.is_nonnegative)


def _residual_text(e: Any) -> str:
    s = str(e if _is_matrix_expr(e) else sp.expand(e) if not isinstance(e, sp.MatrixBase) else e.applyfunc(sp.expand))
    return s if len(s) < 300 else s[:300] + " ..."


@dataclass(frozen=True)
class Step:
    """One line of a derivation: ``lhs <relation> rhs``, why, and how checked.

    Parameters
    ----------
    name : str
        Short identifier, unique within its derivation (reported on failure).
    lhs, rhs : sympy expression, Matrix or MatrixExpr
        The two sides.
    relation : {"=", ">=", ">", "<=", "<", "psd"}
        ``"psd"`` means :math:`\\text{lhs} - \\text{rhs} \\succeq 0`.
    reason : str
        Why it holds (flow substitution, product rule, earlier step, lemma).
    method : {"auto", "expand", "simplify", "numeric"}
        How it is verified (see the module docstring).
    dims : str
        The dimensions the check is made in (``""`` for dimension-free).
    given : tuple of (old, new)
        Hypotheses applied as substitutions before the check.
    witness : expression, optional
        For inequalities: the manifestly signed difference; for ``"psd"``: a
        matrix ``G`` with ``lhs - rhs = G G^T``.
    show : str, optional
        LaTeX shown instead of ``lhs <rel> rhs`` (for large explicit sides).
    points, tol : int, float
        Random points and tolerance of the ``"numeric"`` method.
    uses : tuple of str
        Names of earlier steps this one is checked from (see the module
        docstring): their placeholders are replaced (``"="``) or signed
        (sign steps) before the check.
    defines : expression, optional
        The placeholder this step determines, for later steps to use: for an
        ``"="`` step it stands for ``rhs``; for a sign step (``rhs = 0``) it is
        the scalar whose sign the step proves. Without it, an ``"="`` step
        whose ``lhs`` is a symbol (or explicit matrix of symbols) defines
        ``lhs``.
    claim : bool
        A conclusion of the derivation (made by :meth:`Derivation.conclude`).
    """

    name: str
    lhs: Any
    rhs: Any
    relation: str = "="
    reason: str = ""
    method: str = "auto"
    dims: str = ""
    given: tuple[tuple[Any, Any], ...] = ()
    witness: Any = None
    show: str | None = None
    points: int = 8
    tol: float = 1e-8
    uses: tuple[str, ...] = ()
    defines: Any = None
    claim: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.uses, str):
            raise TypeError(f"uses: expected a tuple of step names, got the string {self.uses!r}")
        object.__setattr__(self, "uses", tuple(self.uses))
        if self.relation not in RELATIONS:
            raise ValueError(f"relation: expected one of {RELATIONS}, got {self.relation!r}")
        if self.method not in METHODS:
            raise ValueError(f"method: expected one of {METHODS}, got {self.method!r}")
        object.__setattr__(self, "given", tuple(tuple(g) for g in self.given))

    # ----------------------------------------------------------- verification
    def check(
        self, rng: np.random.Generator | None = None, premises: Sequence[Step] = (),
    ) -> StepResult:
        """Verify this step from ``premises`` (the steps named in :attr:`uses`).

        Never raises for a false step (the result says so). A step whose
        ``uses`` names a step missing from ``premises`` fails.
        """
        t0 = time.perf_counter()
        have = {p.name: p for p in premises}
        missing = [u for u in self.uses if u not in have]
        if missing:
            ok, how, detail = False, "chain", f"uses {missing}, which are not earlier steps of the derivation"
        else:
            try:
                rules = _premise_rules([have[u] for u in self.uses])
                ok, how, detail = self._check(rng if rng is not None else np.random.default_rng(0), rules)
            except Exception as exc:  # a malformed step is a failed step, with its error
                ok, how, detail = False, "error", f"{type(exc).__name__}: {exc}"
        if self.uses and ok:
            how = f"{how}; from {', '.join(self.uses)}"
        if self.dims:
            how = f"{how} [{self.dims}]"
        return StepResult(self, bool(ok), how, detail, time.perf_counter() - t0)

    def _check(self, rng: np.random.Generator, rules: Sequence[tuple[Any, Any]] = ()) -> tuple[bool, str, str]:
        # premises apply before the hypotheses (``given``) and again after them, for
        # placeholders that appear only once a hypothesis has been substituted
        lhs = _rewrite(_substitute(_rewrite(self.lhs, rules), self.given), rules)
        rhs = _rewrite(_substitute(_rewrite(self.rhs, rules), self.given), rules)
        if self.method == "definition":
            return self._check_definition()
        if self.method == "numeric":
            from linfa.symbolic.numeric import sample_relation

            ok, err = sample_relation(lhs, rhs, self.relation, rng, points=self.points, tol=self.tol)
            return ok, f"NUMERIC ONLY (not a proof): {self.points} random points", f"worst violation {err:.3g}"
        if self.relation == "=":
            ok, how = _identity(lhs - rhs, self.method)
            return ok, how, "" if ok else "residual: " + _residual_text(lhs - rhs)
        if self.relation == "psd":
            if self.witness is None:
                return False, "psd needs a Gram witness G (lhs - rhs = G G^T)", ""
            g = _substitute(_rewrite(self.witness, rules), ())
            ok, how = _identity(lhs - rhs - g * g.T, self.method)
            return ok, f"{how}; lhs - rhs = G G^T with G = {g}", "" if ok else "not the Gram form of G"
        diff = lhs - rhs if self.relation in (">=", ">") else rhs - lhs
        strict = self.relation in (">", "<")
        if self.witness is None:
            ok = _sign_ok(sp.sympify(diff), strict)
            return ok, "sign of the difference from sympy assumptions", "" if ok else f"sign undecided: {diff}"
        witness = _substitute(_rewrite(self.witness, rules), ())
        ok, how = _identity(diff - witness, self.method)
        if not ok:
            return False, how, "difference is not the witness: " + _residual_text(diff - witness)
        signed = _sign_ok(witness, strict)
        what = "positive" if strict else "non-negative"
        return (
            signed,
            f"{how}; witness {what} by sympy assumptions (sum of signed squares)",
            "" if signed else f"witness not manifestly {what}: {witness}",
        )

    def _check_definition(self) -> tuple[bool, str, str]:
        if self.relation != "=" or self.given:
            return False, "definition", "a definition is an equation without hypotheses"
        try:
            p = _placeholder(self)
        except ValueError as exc:
            return False, "definition", str(exc)
        if p is not self.lhs and not (isinstance(p, sp.MatrixBase) and p == self.lhs):
            return False, "definition", "a definition's lhs must be the placeholder it defines"
        atoms = set(p) if isinstance(p, sp.MatrixBase) else {p}
        rhs_free: set[Any] = set(getattr(self.rhs, "free_symbols", set()))
        if atoms & set(rhs_free) or (isinstance(p, sp.MatrixSymbol) and self.rhs.has(p)):
            return False, "definition", "the placeholder occurs in its own definition"
        return True, "definition (a name for the right-hand side)", ""

    @property
    def how(self) -> str:
        """How the step is verified, in a few words (for rendering)."""
        if self.method == "definition":
            return "definition"
        if self.method == "numeric":
            return "numeric only, not a proof"
        if self.dims:
            return f"exact, {self.dims}"
        sides = (self.lhs, self.rhs)
        if any(_is_matrix_expr(x) for x in sides) and not any(isinstance(x, sp.MatrixBase) for x in sides):
            return "exact, dimension-free"
        return "exact"

    # -------------------------------------------------------------- rendering
    def latex(self) -> str:
        """The step's statement as LaTeX (no surrounding ``$``)."""
        if self.show is not None:
            return self.show
        rhs = "0" if self.relation == "psd" and _is_zero_like(self.rhs) else sp.latex(self.rhs)
        return f"{sp.latex(self.lhs)} {_LATEX_REL[self.relation]} {rhs}"


def _is_zero_like(e: Any) -> bool:
    return bool(e == 0 or isinstance(e, sp.ZeroMatrix) or (isinstance(e, sp.MatrixBase) and e.is_zero_matrix))


@dataclass(frozen=True)
class StepResult:
    """Outcome of checking one step: ``ok``, the method used, a detail on failure."""

    step: Step
    ok: bool
    method: str
    detail: str
    seconds: float

    @property
    def name(self) -> str:
        """The step's name."""
        return self.step.name

    @property
    def numeric_only(self) -> bool:
        """True when the step was only tested at random points, not proved."""
        return self.step.method == "numeric"

    def __str__(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        tail = f" — {self.detail}" if self.detail and not self.ok else ""
        return f"[{mark}] {self.name}: {self.method} ({self.seconds:.2f}s){tail}"


@dataclass(frozen=True)
class Report:
    """The result of :meth:`Derivation.verify`; truthy iff every step verified."""

    title: str
    results: tuple[StepResult, ...]
    checks: tuple[Any, ...] = ()
    structure: tuple[str, ...] = ()
    chains: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def ok(self) -> bool:
        """All steps (and any cross-checks run) verified, and the steps form a chain to the claims."""
        return (all(r.ok for r in self.results) and all(c.ok for c in self.checks)
                and not self.structure)

    @property
    def failed(self) -> list[str]:
        """Names of the failed steps and cross-checks, then the chain's problems, in order."""
        return ([r.name for r in self.results if not r.ok] + [c.name for c in self.checks if not c.ok]
                + [f"chain: {p}" for p in self.structure])

    @property
    def claims(self) -> tuple[str, ...]:
        """Names of the claim steps (the derivation's conclusions)."""
        return tuple(r.name for r in self.results if r.step.claim)

    def __bool__(self) -> bool:
        return self.ok

    def __iter__(self) -> Iterator[StepResult]:
        return iter(self.results)

    @property
    def fixed_dims(self) -> tuple[str, ...]:
        """The distinct dimensions of steps proved only at stated sizes (not dimension-free)."""
        return _fixed_dims(self.results)

    @property
    def scope(self) -> str:
        """What the verification covers, in words.

        ``"dimension-free"`` when every step is proved for all sizes;
        otherwise the sizes at which some steps are only proved exactly, and
        how many steps were only tested at random points (never a proof).
        """
        return _scope(self.results)

    def scope_of(self, claim: str) -> str:
        """:attr:`scope` of the chain that ends in ``claim`` (the claim and the steps it rests on)."""
        chain = dict(self.chains).get(claim)
        if chain is None:
            raise UnknownNameError("claim", claim, list(self.claims), kind="claim")
        names = {claim, *chain}
        return _scope(tuple(r for r in self.results if r.name in names))

    def raise_if_failed(self) -> None:
        """Raise :class:`VerificationError` naming the first failed step."""
        for r in self.results:
            if not r.ok:
                raise VerificationError(f"{self.title}: step {r.name!r} failed: {r.method}; {r.detail}")
        for c in self.checks:
            if not c.ok:
                raise VerificationError(f"{self.title}: cross-check {c.name!r} failed: {c}")
        if self.structure:
            raise VerificationError(f"{self.title}: not a chain to its claims: {'; '.join(self.structure)}")

    def __str__(self) -> str:
        lines = [f"{self.title}: {'verified (' + self.scope + ')' if self.ok else 'FAILED: ' + ', '.join(self.failed)}"]
        lines += [f"  [FAIL] chain: {p}" for p in self.structure]
        lines += [f"  {r}" for r in self.results]
        lines += [f"  {c}" for c in self.checks]
        return "\n".join(lines)


def _fixed_dims(results: Sequence[StepResult]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for r in results:
        if r.step.dims and not r.numeric_only:
            seen.setdefault(r.step.dims, None)
    return tuple(seen)


def _scope(results: Sequence[StepResult]) -> str:
    parts = []
    fixed = _fixed_dims(results)
    if fixed:
        parts.append("some steps exact only at " + "; ".join(fixed))
    n_numeric = sum(r.numeric_only for r in results)
    if n_numeric:
        parts.append(f"{n_numeric} step(s) numeric only")
    return ", ".join(parts) if parts else "dimension-free"


@dataclass(frozen=True)
class Counterexample:
    """A numerical witness that a hypothesis (often left implicit) is needed.

    Parameters
    ----------
    hypothesis : str
        The hypothesis dropped (e.g. ``"B^T B = cI"``).
    claim : str
        What then fails (e.g. ``"e^T W B e >= 0 from zero init"``).
    find : callable
        ``find() -> CheckResult``; ``ok`` when the counterexample was found.
    """

    hypothesis: str
    claim: str
    find: Callable[[], Any]


@dataclass
class Derivation:
    r"""A claim with its derivation: ordered, self-verifying steps.

    Parameters
    ----------
    title : str
    statement : str
        The claim, in LaTeX.
    hypotheses : sequence of str
        Hypotheses of the claim, in LaTeX (including those a paper leaves
        implicit).
    steps : list of Step
    reference : str
        Where the claim comes from.
    conclusion : str
        How the steps give the statement (LaTeX/prose).
    checks : dict of str to callable
        Numerical cross-checks ``check(rng) -> CheckResult`` against linfa's
        numerical flows and observables (:mod:`linfa.symbolic.numeric`).
    counterexamples : list of Counterexample

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> d = Derivation("square", r"x^2 + 2x + 1 \geq 0")
    >>> s = sp.Symbol("s", real=True)  # a placeholder for x^2 + 2x + 1
    >>> d.add("complete", x**2 + 2 * x + 1, (x + 1) ** 2, defines=s, reason="complete the square")
    >>> d.conclude(s, 0, ">=", uses=("complete",), reason="a square is non-negative")
    >>> d.verify().ok
    True
    >>> d.without("complete").verify().ok  # the claim does not hold without its premise
    False
    """

    title: str
    statement: str
    hypotheses: Sequence[str] = ()
    steps: list[Step] = field(default_factory=list)
    reference: str = ""
    conclusion: str = ""
    checks: dict[str, Callable[[np.random.Generator], Any]] = field(default_factory=dict)
    counterexamples: list[Counterexample] = field(default_factory=list)

    # -------------------------------------------------------------- building
    def add(self, name: str, lhs: Any, rhs: Any, relation: str = "=", **kwargs: Any) -> None:
        """Append ``Step(name, lhs, rhs, relation, **kwargs)``; names must be unique."""
        self.append(Step(name, lhs, rhs, relation, **kwargs))

    def append(self, step: Step) -> None:
        """Append a ready-made step (e.g. from :mod:`linfa.symbolic.calculus`)."""
        if any(s.name == step.name for s in self.steps):
            raise ValueError(f"name: step {step.name!r} already exists in {self.title!r}")
        self.steps.append(step)

    def define(self, name: str, placeholder: Any, value: Any, **kwargs: Any) -> None:
        """Append a definition: ``placeholder`` names ``value`` for later steps (nothing to prove)."""
        self.append(Step(name, placeholder, value, "=", method="definition", **kwargs))

    def conclude(self, lhs: Any, rhs: Any, relation: str = "=", *, name: str = "claim", **kwargs: Any) -> None:
        """Append a claim step: the derivation's statement, checked from the steps in ``uses``.

        ``show`` defaults to :attr:`statement`. A derivation may have several
        claims (one per catalogue entry it proves); it must end in one.
        """
        kwargs.setdefault("show", self.statement)
        self.append(Step(name, lhs, rhs, relation, claim=True, **kwargs))

    def without(self, name: str) -> Derivation:
        """A copy with step ``name`` deleted and dropped from every other step's ``uses``.

        A derivation whose claims follow from their steps fails to verify
        after any non-claim step is deleted this way.
        """
        from dataclasses import replace as _replace

        self.step(name)
        steps = [_replace(s, uses=tuple(u for u in s.uses if u != name)) for s in self.steps if s.name != name]
        return _replace(self, steps=steps)

    def ancestors(self, name: str) -> list[str]:
        """The steps that step ``name`` is checked from, directly or through other steps, in order."""
        by_name = {s.name: s for s in self.steps}
        seen: set[str] = set()
        todo = list(self.step(name).uses)
        while todo:
            u = todo.pop()
            if u in seen or u not in by_name:
                continue
            seen.add(u)
            todo.extend(by_name[u].uses)
        return [s.name for s in self.steps if s.name in seen]

    def dependents(self, name: str) -> list[str]:
        """The steps checked from step ``name``, directly or through other steps, in order."""
        self.step(name)
        return [s.name for s in self.steps if name in self.ancestors(s.name)]

    def chain_problems(self) -> list[str]:
        """What keeps the steps from being a chain ending in the claims (empty when none).

        The last step must be a claim; every claim must be checked from earlier
        steps; each ``uses`` must name an earlier step; every other step must be
        used on the way to some claim.
        """
        problems = []
        if not self.steps or not self.steps[-1].claim:
            problems.append("the derivation does not end in a claim step (use conclude)")
        names: list[str] = []
        for s in self.steps:
            late = [u for u in s.uses if u not in names]
            if late:
                problems.append(f"step {s.name!r} uses {late}, which are not earlier steps")
            if s.claim and not s.uses:
                problems.append(f"claim {s.name!r} is not checked from any earlier step")
            names.append(s.name)
        needed: set[str] = set()
        for s in self.steps:
            if s.claim:
                needed.update(self.ancestors(s.name))
        idle = [s.name for s in self.steps if not s.claim and s.name not in needed]
        if idle:
            problems.append(f"steps {idle} are not used on the way to any claim")
        return problems

    @property
    def claims(self) -> list[Step]:
        """The claim steps."""
        return [s for s in self.steps if s.claim]

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        for s in self.steps:
            if s.name == name:
                return s
        raise UnknownNameError("name", name, [s.name for s in self.steps], kind=f"step of {self.title!r}")

    def replace(self, name: str, **changes: Any) -> Derivation:
        """A copy with step ``name`` changed (e.g. a deliberately wrong ``rhs``)."""
        from dataclasses import replace as _replace

        old = self.step(name)
        steps = [(_replace(s, **changes) if s is old else s) for s in self.steps]
        return _replace(self, steps=steps)

    # ----------------------------------------------------------- verification
    def verify(self, *, cross_check: bool = False, rng: np.random.Generator | None = None) -> Report:
        """Check every step (and, optionally, the numerical cross-checks).

        Parameters
        ----------
        cross_check : bool
            Also run :attr:`checks` with ``rng``.
        rng : numpy.random.Generator, optional
            Randomness for numeric steps and cross-checks (seed 0 if omitted).

        Returns
        -------
        Report
        """
        rng = rng if rng is not None else np.random.default_rng(0)
        earlier: dict[str, Step] = {}
        results = []
        for s in self.steps:
            results.append(s.check(rng, [earlier[u] for u in s.uses if u in earlier]))
            earlier[s.name] = s
        checks = tuple(self.cross_check(rng)) if cross_check else ()
        chains = tuple((c.name, tuple(self.ancestors(c.name))) for c in self.claims)
        return Report(self.title, tuple(results), checks, tuple(self.chain_problems()), chains)

    def cross_check(self, rng: np.random.Generator | None = None) -> list[Any]:
        """Run every numerical cross-check; a check that raises counts as failed."""
        from linfa.symbolic.numeric import CheckResult

        rng = rng if rng is not None else np.random.default_rng(0)
        out = []
        for name, fn in self.checks.items():
            try:
                res = fn(rng)
            except Exception as exc:
                res = CheckResult(name, False, float("nan"), 0.0, f"{type(exc).__name__}: {exc}")
            out.append(res)
        return out

    def run(self, *, seed: int = 0, verbose: bool = True) -> int:
        """Print the derivation, verify it, run its checks; return an exit code.

        Used by ``python proofs/<name>.py``: 0 when every step, cross-check
        and counterexample succeeds, 1 otherwise.
        """
        rng = np.random.default_rng(seed)
        if verbose:
            print(self.to_text())
            print()
        report = self.verify(cross_check=True, rng=rng)
        found = [(c, _safe_find(c)) for c in self.counterexamples]
        if verbose:
            print(report)
            for c, res in found:
                print(f"  counterexample (without {c.hypothesis}, {c.claim} fails): {res}")
        ok = report.ok and all(res.ok for _, res in found)
        if verbose:
            print("VERIFIED" if ok else "FAILED")
        return 0 if ok else 1

    # -------------------------------------------------------------- rendering
    def to_text(self) -> str:
        """Plain-text rendering (statement, hypotheses, numbered steps)."""
        lines = [f"== {self.title} ==", f"Claim: {self.statement}"]
        if self.reference:
            lines.append(f"Reference: {self.reference}")
        for h in self.hypotheses:
            lines.append(f"Hypothesis: {h}")
        for i, s in enumerate(self.steps, 1):
            rel = {"psd": "⪰"}.get(s.relation, s.relation)
            body = s.show if s.show is not None else f"{s.lhs}  {rel}  {s.rhs}"
            lines.append(f"({i}) [{s.name}] {body}")
            if s.given:
                lines.append("      given " + "; ".join(f"{o} = {n}" for o, n in s.given))
            if s.reason:
                lines.append(f"      because {s.reason}")
        if self.conclusion:
            lines.append(f"Hence: {self.conclusion}")
        return "\n".join(lines)

    def to_latex(self) -> str:
        """LaTeX: an ``aligned`` block, one row per step with its reason and check method."""
        rows = []
        for i, s in enumerate(self.steps, 1):
            how = s.how
            given = ""
            if s.given:
                given = r"\ \text{given}\ " + r",\ ".join(f"{sp.latex(o)} = {sp.latex(n)}" for o, n in s.given)
            rows.append(
                rf"&\text{{({i}) {_tex_escape(s.name)}:}}\quad {s.latex()}{given}"
                rf"\quad\text{{[{_tex_escape(s.reason)}; {_tex_escape(how)}]}}"
            )
        head = rf"\textbf{{{_tex_escape(self.title)}}}:\ {self.statement}"
        return head + "\n" + r"\begin{aligned}" + "\n" + (r"\\" + "\n").join(rows) + "\n" + r"\end{aligned}"

    def _repr_latex_(self) -> str:
        return "$$" + self.to_latex() + "$$"

    def to_markdown(self) -> str:
        """Markdown: statement, hypotheses and a numbered list of steps with inline LaTeX."""
        lines = [f"**{self.title}.** ${self.statement}$", ""]
        if self.reference:
            lines += [f"*Reference:* {self.reference}", ""]
        if self.hypotheses:
            lines += ["*Hypotheses:* " + "; ".join(f"${h}$" for h in self.hypotheses), ""]
        for i, s in enumerate(self.steps, 1):
            how = s.how
            given = ""
            if s.given:
                given = " given " + ", ".join(f"${sp.latex(o)} = {sp.latex(n)}$" for o, n in s.given)
            lines.append(f"{i}. `{s.name}`: ${s.latex()}${given} — {s.reason} *({how})*")
        if self.conclusion:
            lines += ["", f"*Hence:* {self.conclusion}"]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return f"Derivation({self.title!r}, {len(self.steps)} steps)"


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash "), ("_", r"\_"), ("&", r"\&"), ("%", r"\%"), ("#", r"\#"),
                 ("{", r"\{"), ("}", r"\}"), ("$", r"\$"), ("^", r"\^{}")):
        s = s.replace(a, b)
    return s


def _safe_find(c: Counterexample) -> Any:
    from linfa.symbolic.numeric import CheckResult

    try:
        return c.find()
    except Exception as exc:
        return CheckResult(c.claim, False, float("nan"), 0.0, f"{type(exc).__name__}: {exc}")
