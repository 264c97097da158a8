"""The numbered facts the catalogue verifies, as data.

Docstrings, catalogue entries (:attr:`linfa.theorems.Theorem.fact`),
derivations, proofs and notebooks cite a fact by its number ("docs/design.md,
fact 3"). This module is the one source of their text: the section "The facts"
of ``docs/design.md`` in the repository is generated from :data:`FACTS` (a test
keeps the two equal, see :func:`markdown`), and ``linfa list -v`` prints the
fact of each entry from here, so an installed package documents itself.

Notation (as everywhere in linfa): ``ŷ = W_L ⋯ W_1 x`` with ``W_l`` of shape
``n_l × n_{l-1}``; ``Σxx = <x x^T>``, ``Σyx = <y x^T>``, ``Σyy = <y y^T>``;
``W = W_L ⋯ W_1``; ``E = Σyx − W Σxx = <e x^T>`` with ``e = y − ŷ``. For two
layers ``h = A x``, ``ŷ = W h``, and FA's fixed feedback ``B`` stands in for
``W^T``.

Examples
--------
>>> from linfa import facts
>>> facts.get(8).title
'Kolen–Pollack: the mismatch decays exponentially'
"""

from __future__ import annotations

from dataclasses import dataclass

from linfa.errors import UnknownNameError

__all__ = ["FACTS", "Fact", "get", "markdown"]


@dataclass(frozen=True)
class Fact:
    """One numbered fact.

    Attributes
    ----------
    number : int
        Its number, ``1..len(FACTS)``; citations use it ("fact 3").
    title : str
        One line.
    source : str
        Where it comes from (papers, or the project's own derivation).
    text : str
        The statement with its equations (Markdown, equations in backticks).
    """

    number: int
    title: str
    source: str
    text: str


FACTS: tuple[Fact, ...] = (
    Fact(
        1,
        "The alignment condition",
        "Lillicrap et al. 2016",
        "With two layers `h = A x`, `ŷ = W h`, feedback alignment sends the output error `e` to the hidden "
        "layer as `B e` where backprop sends `W^T e`. The two signals are within 90° of each other iff "
        "`e^T W B e > 0`, since `cos∠(B e, W^T e) = e^T W B e / (‖B e‖ ‖W^T e‖)`. Averaged over the data, the "
        "hidden-layer updates `B E` and `W^T E` are within 90° iff `tr(W B E E^T) > 0`; with `Σxx = I` and a "
        "noiseless teacher `E E^T` is the error covariance `Σee = <e e^T>`. Along the flow, moving only `A` by its "
        "FA update `B E` changes the loss at the rate `−tr(W B E E^T)`: the hidden update lowers the loss exactly "
        "when it is within 90° of backprop's.",
    ),
    Fact(
        2,
        "Conservation laws of FA and BP",
        "Lillicrap et al. 2016 (Supplementary Note); Saxe et al. 2014; Arora et al. 2018; Du et al. 2018",
        "Under the FA flow `dA/dt = B E`, `dW/dt = E A^T` (two layers), for any initialisation and any "
        "`Σxx`, the matrix `A A^T − B W − W^T B^T` is constant in time; in a deep network "
        "`W_l W_l^T − B_{l+1} W_{l+1} − W_{l+1}^T B_{l+1}^T` is constant for every hidden layer `l`. "
        "The backprop analogue is balancedness: `W_l W_l^T − W_{l+1}^T W_{l+1}` is constant. In discrete "
        "time (a GD or SGD step of size `η` on a minibatch) the FA quantity changes by exactly "
        "`η² (B Ê)(B Ê)^T ⪰ 0`, with `Ê` the minibatch's error–input correlation: a positive semi-definite "
        "drift of order `η²`.",
    ),
    Fact(
        3,
        "Feedback alignment from zero initialisation",
        "Lillicrap et al. 2016; the project's derivation",
        "Two layers, FA, `A(0) = 0`, `W(0) = 0`. Then at all times `A = B M` and `W = N B^T` with "
        "`M = ∫_0^t E dt'` and `N + N^T = M M^T`. If `B^T B = c I` then `e^T W B e = (c/2) ‖M^T e‖² ≥ 0` for "
        "every `e`, so FA's hidden signal is never more than 90° from backprop's; and with `Σxx = I` the "
        "loss is a Lyapunov function, `dL/dt = −c ‖E M^T‖² − (c/2) ‖M^T E‖² ≤ 0`. With a single output, "
        "`W^T` is a non-negative multiple of `B`. For a general `B` (no `B^T B = c I`) the sign of "
        "`e^T W B e` is not guaranteed: that is a conjecture to test, and the catalogue holds a "
        "counterexample.",
    ),
    Fact(
        4,
        "Matrix factorisation under feedback alignment",
        "Garg & Vempala 2022",
        "Factorise `Y ≈ Z W` (`Z`: `n × r`, `W`: `r × m`): a two-layer network with whitened input "
        "(`Task.factorization(Y)`). The first layer `W` learns with `B^T` in place of `Z^T`. The matrix "
        "`Sym(B^T Z) − ½ W W^T` is conserved, with `Sym(X) = (X + X^T)/2`. A fixed point with `B^T Z` "
        "invertible satisfies `Z W = Y Π`, `Π` the orthogonal projector onto the row space of `B^T Y`. "
        "When `r ≥ rank Y` this is the optimum `Z W = Y`; when `r < rank Y` it is a subspace chosen by `B`, "
        "in general worse than the best rank-`r` approximation.",
    ),
    Fact(
        5,
        "Alignment matrices of DFA and deep FA from zero initialisation",
        "Refinetti et al. 2021; Nøkland 2016",
        "DFA on a deep linear network from zero initial weights keeps the factor structure "
        "`W_1 = B_1 A_1`, `W_l = B_l A_l B_{l-1}^T` (`1 < l < L`), `W_L = A_L B_{L-1}^T` with small "
        "alignment matrices `A_l` (`A_1` is `n_L × n_0`, the others square, `n_L × n_L`). The structure holds for "
        "any `Σxx` and under discrete SGD. Deep FA has the same structure with the backward matrices "
        "`M_l = B_{l+1} ⋯ B_L` in place of `B_l`. Backprop's backward matrix is then `W_{>l}^T = M_l Λ_l^T` "
        "with `Λ_l = A_L G_{L-1} A_{L-1} ⋯ G_{l+1} A_{l+1}`, `G_l = M_l^T M_l`. So the alignment of the "
        "updates with backprop's degrades with the conditioning of the alignment matrices (and with "
        "`G_l` far from a multiple of the identity): with `G_l = c I` and `Λ_l` symmetric positive "
        "definite of condition number `κ`, the cosine between the DFA (or FA) signal and backprop's is at "
        "least `2√κ / (1 + κ)` (Kantorovich's inequality).",
    ),
    Fact(
        6,
        "Saxe et al.'s mode dynamics",
        "Saxe, McClelland & Ganguli 2014",
        "Backprop, two layers, `Σxx = I`, `Σyx = U S V^T`, initial weights aligned with the modes and "
        "balanced. Each mode strength `u` (the mode's singular value of `W_2 W_1`) then evolves on its own, "
        "`τ du/dt = 2 u (s − u)`, with the logistic solution "
        "`u(t) = s e^{2st/τ} / (e^{2st/τ} − 1 + s/u_0)`.",
    ),
    Fact(
        7,
        "Two-phase learning with a quadratic energy",
        "Scellier & Bengio 2017",
        "Energy `E(s) = ½ s^T A s − s^T (b + U x)` with `A` symmetric positive definite, cost "
        "`C = ½ ‖P s − d‖²`, nudged energy `F = E + β C`. The free (`β = 0`) and nudged fixed points are "
        "linear solves. The one-sided equilibrium-propagation estimate "
        "`(1/β)(∂F/∂θ(s^β) − ∂F/∂θ(s^0))` equals the gradient `dJ/dθ` of the cost at the free fixed point "
        "up to an error `O(β)`; the centred estimate using `±β` has error `O(β²)`. The nudged relaxation "
        "`ds/dt = −∂F/∂s` is itself a linear ODE.",
    ),
    Fact(
        8,
        "Kolen–Pollack: the mismatch decays exponentially",
        "Kolen & Pollack 1994; Akrout et al. 2019",
        "Kolen–Pollack is FA whose feedback learns: `dB_k/dt = (dW_k/dt)^T − λ B_k`, with weight decay "
        "`−λ W_k` added to the forward update. The two updates share their data term, so "
        "`d/dt (W_k − B_k^T) = −λ (W_k − B_k^T)` and `W_k(t) − B_k(t)^T = e^{−λt} (W_k(0) − B_k(0)^T)` "
        "exactly, for any task and any initialisation.",
    ),
    Fact(
        9,
        "Shallow teacher–student networks in the high-dimensional limit",
        "Saad & Solla 1995; Goldt et al. 2019; Refinetti et al. 2021",
        "Online SGD on a two-layer network with `N → ∞` inputs `x ~ N(0, I_N)`: teacher "
        "`y = Σ_m v*_m g(λ*_m) + σ ζ`, student `ŷ = Σ_k v_k g(λ_k)`, local fields `λ_k = w_k·x/√N`. "
        "The order parameters `Q = w w^T/N`, `R = w w*^T/N`, `T = w* w*^T/N` and `v` follow deterministic "
        "ODEs in the time `α = steps/N`, written with Gaussian averages over the fields "
        "(`I2(a,b) = <g(λ_a) g(λ_b)>`, `I3(a,b,c) = <g'(λ_a) λ_b g(λ_c)>`, "
        "`I4(a,b,c,d) = <g'(λ_a) g'(λ_b) g(λ_c) g(λ_d)>`, `J2(a,b) = <g'(λ_a) g'(λ_b)>`), each a function of "
        "the covariance of the fields involved, in closed form for `g = erf(·/√2)` and for linear `g`. "
        "DFA replaces `v_k` by a fixed feedback `b_k` in the first-layer update. Its learning shows an "
        "alignment phase (`v` turns towards `b` while the generalisation error stays high) followed by a "
        "memorisation phase; among the zero-error solutions DFA selects one that maximises the alignment "
        "(degeneracy breaking).",
    ),
)


def get(number: int) -> Fact:
    """The fact numbered ``number``.

    Raises
    ------
    linfa.UnknownNameError
        (a ``KeyError`` and ``ValueError``) listing the numbers, if there is no such fact.
    """
    for fact in FACTS:
        if fact.number == number:
            return fact
    raise UnknownNameError("number", number, [f.number for f in FACTS], kind="fact")


def markdown() -> str:
    """The section "The facts" of ``docs/design.md``, rendered from :data:`FACTS`."""
    lines = ["## The facts", "",
             "Each fact is a claim the catalogue checks numerically (`linfa list -v` names the fact of each",
             "entry) and, where it is an identity, derives symbolically (`linfa.symbolic.derivations`).",
             "The text below is generated from `linfa/facts.py` (`python -m linfa.facts` prints it); edit it there.",
             ""]
    for f in FACTS:
        lines += [f"### Fact {f.number}. {f.title}", "", f"*{f.source}.*", "", f.text, ""]
    return "\n".join(lines)


if __name__ == "__main__":  # python -m linfa.facts > section.md: the section to paste into docs/design.md
    print(markdown())
