"""Runge–Kutta methods as data: Butcher tableaus with their error estimates and dense output.

A method is its tableau (``C``, ``A``, ``B``), its error weights and its
continuous extension; the one batched loop in :mod:`linfa.integrate._engine`
does the rest. A method object (or class) is accepted wherever a method name
is (:func:`as_method`), so a user's own tableau plugs in like a built-in one.

Conventions (shared with ``scipy.integrate._ivp.rk``): a step
from ``(t, y)`` with size ``h`` computes the stages ``k_i = f(t + c_i h, y +
h Σ_j a_ij k_j)`` for ``i < s``, the new state ``y_new = y + h Σ_i b_i k_i``,
and always the extra row ``k_s = f(t + h, y_new)``, which is the first stage
of the next step ("first same as last"). The engine stores the *scaled*
stages ``hk_i = h k_i``, so every formula below is written in them.

Coefficients are the published ones: Dormand & Prince (1980) with Shampine's
(1986) interpolant for ``dopri5``; Tsitouras (2011) with its own quartic
interpolant for ``tsit5``; Hairer, Nørsett & Wanner, *Solving Ordinary
Differential Equations I* (DOP853, 2nd ed.) for ``dop853``.
``tests/test_integrate_tableaus.py`` checks every one against the order
conditions (rooted trees), so a mistyped digit cannot pass.
"""

from __future__ import annotations

import functools
from typing import ClassVar

import numpy as np


def lincomb(coeffs: np.ndarray, rows: np.ndarray, out: np.ndarray, tmp: np.ndarray | None = None) -> np.ndarray:
    """``out = Σ_j coeffs[j] rows[j]``, element by element in a fixed order.

    Only elementwise multiplies and adds are used, so every entry is rounded
    the same way whatever the number of instances in the batch: a batched
    solve is bit-identical to single solves (a BLAS product is not: its
    blocking and fused multiply-adds depend on the array width). Zero
    coefficients are skipped.

    Parameters
    ----------
    coeffs : ndarray, shape (n,)
    rows : ndarray, shape (n, ...)
    out : ndarray, shape rows.shape[1:]
    tmp : ndarray, optional
        Scratch of the same shape as ``out`` (allocated if omitted).
    """
    first = True
    for c, r in zip(coeffs, rows, strict=False):
        c = float(c)
        if c == 0.0:
            continue
        if first:
            if c == 1.0:
                np.copyto(out, r)
            else:
                np.multiply(r, c, out=out)
            first = False
        else:
            if tmp is None:
                tmp = np.empty_like(out)
            np.multiply(r, c, out=tmp)
            np.add(out, tmp, out=out)
    if first:
        out.fill(0.0)
    return out

__all__ = ["METHODS", "AbstractRungeKutta", "Dop853", "Dopri5", "Euler", "Tsit5", "as_method"]


class AbstractRungeKutta:
    """An explicit Runge–Kutta method, described by class attributes.

    Attributes
    ----------
    name : str
    order : int
        Order ``p`` of the step: the global error is ``O(h^p)``.
    C : ndarray, shape (s,)
    A : ndarray, shape (s, s)
        Strictly lower triangular.
    B : ndarray, shape (s,)
    error_weights : tuple of ndarray, each shape (s + 1,)
        Weights ``e`` of the error estimates ``Σ_i e_i hk_i`` (the last entry
        multiplies the first-same-as-last row); empty for a fixed-step method.
    error_order : int
        Order ``q`` of the embedded estimate; the step-size controller uses
        the exponent ``-1/(q + 1)``.
    C_extra, A_extra : ndarray
        Extra stages needed only by the dense output (DOP853); empty otherwise.
    """

    name: ClassVar[str]
    order: ClassVar[int]
    C: ClassVar[np.ndarray]
    A: ClassVar[np.ndarray]
    B: ClassVar[np.ndarray]
    error_weights: ClassVar[tuple[np.ndarray, ...]] = ()
    error_order: ClassVar[int] = 0
    C_extra: ClassVar[np.ndarray] = np.zeros(0)
    A_extra: ClassVar[np.ndarray] = np.zeros((0, 0))

    @property
    def n_stages(self) -> int:
        """Number of stages ``s`` of one step (not counting the last row)."""
        return len(self.B)

    @functools.cached_property
    def stability_limit(self) -> float:
        """Where the stability interval on the negative real axis ends: ``x`` with ``|R(-x)| = 1``.

        ``R(z) = 1 + z bᵀ (I - zA)⁻¹ 1`` is the method's stability function (a
        polynomial for an explicit method); a step ``h`` on ``dy/dt = λy``
        with real ``λ < 0`` is stable while ``h|λ| <= x`` (2 for Euler, about
        3.3 for ``dopri5``). Computed from the tableau.
        """
        A, B = np.asarray(self.A, dtype=float), np.asarray(self.B, dtype=float)
        # R(z) = 1 + Σ_k z^{k+1} bᵀ A^k 1: its coefficients, A nilpotent
        coeffs, v = [1.0], np.ones(len(B))
        for _ in range(len(B)):
            coeffs.append(float(B @ v))
            v = A @ v
        poly = np.polynomial.Polynomial(coeffs)
        xs = np.arange(1, 4001) * 0.01
        outside = np.abs(poly(-xs)) > 1.0
        if not outside.any():
            return float(xs[-1])
        hi = float(xs[np.argmax(outside)])
        lo = hi - 0.01
        for _ in range(50):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if abs(poly(-mid)) <= 1.0 else (lo, mid)
        return lo

    @property
    def adaptive(self) -> bool:
        """Whether the method carries an error estimate (else it is fixed-step)."""
        return bool(self.error_weights)

    def error_norm(self, sq: list[np.ndarray], n: int) -> np.ndarray:
        """Combine squared scaled norms of the estimates into one error per instance.

        Parameters
        ----------
        sq : list of ndarray, each shape (K,)
            ``Σ (err/scale)²`` for each estimate in :attr:`error_weights`.
        n : int
            Number of components per instance.

        Returns
        -------
        ndarray, shape (K,)
            RMS error relative to the tolerance; a step is accepted when ``<= 1``.
        """
        return np.sqrt(sq[0] / n)

    def dense_coefficients(
        self, hk: np.ndarray, y_old: np.ndarray, y_new: np.ndarray
    ) -> np.ndarray:
        """Coefficients of the interpolant on one step.

        Parameters
        ----------
        hk : ndarray, shape (s + 1 + n_extra, m, D)
            Scaled stages, the first-same-as-last row and the dense-output extras.
        y_old, y_new : ndarray, shape (m, D)

        Returns
        -------
        ndarray, shape (p, m, D)
        """
        raise NotImplementedError

    def dense_eval(self, F: np.ndarray, y_old: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Evaluate the interpolant at ``t_old + θ h``; ``θ`` of shape ``(m,)``, result ``(m, D)``."""
        raise NotImplementedError


class _PolynomialDense(AbstractRungeKutta):
    """Dense output ``y(θ) = y_old + Σ_p θ^{p+1} Σ_i P_ip hk_i`` (Shampine's form)."""

    P: ClassVar[np.ndarray]

    def dense_coefficients(
        self, hk: np.ndarray, y_old: np.ndarray, y_new: np.ndarray
    ) -> np.ndarray:
        s1 = self.P.shape[0]
        F = np.empty((self.P.shape[1], *hk.shape[1:]))
        tmp = np.empty(hk.shape[1:])
        for q in range(self.P.shape[1]):
            lincomb(self.P[:, q], hk[:s1], F[q], tmp)
        return F

    def dense_eval(self, F: np.ndarray, y_old: np.ndarray, theta: np.ndarray) -> np.ndarray:
        th = theta[:, None]
        y = F[-1] * th
        for f in F[-2::-1]:
            y += f
            y *= th
        return y + y_old


class Euler(_PolynomialDense):
    """Forward Euler, fixed step: ``y_{n+1} = y_n + h f(t_n, y_n)``.

    On a learning rule's flow one step is one step of full-batch gradient
    descent (or FA, DFA, ...) with learning rate ``h``. The dense output
    interpolates linearly.
    """

    name = "euler"
    order = 1
    C = np.array([0.0])
    A = np.zeros((1, 1))
    B = np.array([1.0])
    P = np.array([[1.0], [0.0]])


class Dopri5(_PolynomialDense):
    """Dormand–Prince 5(4), the method of ``ode45`` and scipy's ``RK45``.

    Fifth-order steps, fourth-order error estimate, quartic interpolant
    (Shampine 1986).
    """

    name = "dopri5"
    order = 5
    error_order = 4
    C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0])
    A = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [1 / 5, 0, 0, 0, 0, 0],
            [3 / 40, 9 / 40, 0, 0, 0, 0],
            [44 / 45, -56 / 15, 32 / 9, 0, 0, 0],
            [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0, 0],
            [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0],
        ]
    )
    B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84])
    error_weights = (
        np.array([-71 / 57600, 0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40]),
    )
    P = np.array(
        [
            [1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
            [0, 0, 0, 0],
            [0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
            [0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
            [
                0,
                127303824393 / 49829197408,
                -318862633887 / 49829197408,
                701980252875 / 199316789632,
            ],
            [0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
            [0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
        ]
    )


def _tsit5_dense() -> np.ndarray:
    """Tsitouras' interpolant as Shampine-form coefficients ``P (7, 4)``.

    The paper gives each weight ``b_i(θ)`` (``y(θ) = y_old + h Σ_i b_i(θ) k_i``)
    in factored form; ``P[i, q]`` is the coefficient of ``θ^{q+1}`` in ``b_i``.
    """
    polymul = np.polynomial.polynomial.polymul
    th = [0.0, 1.0]
    factored = [
        (-1.0530884977290216, [th, [-1.3299890189751412, 1.0], [0.7139816917074209, -1.4364028541716351, 1.0]]),
        (0.1017, [th, th, [1.2949852507374631, -2.1966568338249754, 1.0]]),
        (2.490627285651252793, [th, th, [1.57803468208092486, -2.38535645472061657, 1.0]]),
        (-16.54810288924490272, [th, th, [-1.21712927295533244, 1.0], [-0.61620406037800089, 1.0]]),
        (47.37952196281928122, [th, th, [-1.203071208372362603, 1.0], [-0.658047292653547382, 1.0]]),
        (-34.87065786149660974, [th, th, [-1.2, 1.0], [-2.0 / 3.0, 1.0]]),
        (2.5, [th, th, [-1.0, 1.0], [-0.6, 1.0]]),
    ]
    out = np.zeros((7, 4))
    for i, (scale, factors) in enumerate(factored):
        poly = np.array([scale])
        for f in factors:
            poly = polymul(poly, f)
        out[i] = poly[1:5]
    return out


class Tsit5(_PolynomialDense):
    """Tsitouras 5(4) (2011): Dormand–Prince's cost, smaller error constants.

    Seven stages with first-same-as-last (six flow evaluations per step),
    fifth-order steps, a fourth-order error estimate and a quartic
    interpolant; the default of DifferentialEquations.jl and diffrax. Its
    principal error coefficients are smaller than ``dopri5``'s, so at the
    same tolerance it usually takes fewer steps.
    """

    name = "tsit5"
    order = 5
    error_order = 4
    C = np.array([0.0, 0.161, 0.327, 0.9, 0.9800255409045096857298102862870245954942, 1.0])
    A = np.array(
        [
            [0, 0, 0, 0, 0, 0],
            [0.161, 0, 0, 0, 0, 0],
            [-0.8480655492356988544426874250230774675121e-2, 0.3354806554923569885444268742502307746751, 0, 0, 0, 0],
            [2.897153057105493432130432594192938764925, -6.359448489975074843148159912383825625953,
             4.362295432869581411017727318190886861028, 0, 0, 0],
            [5.325864828439256604428877920840511317836, -11.74888356406282787774717033978577296189,
             7.495539342889836208304604784564358155659, -0.9249506636175524925650207933207191611350e-1, 0, 0],
            [5.861455442946420028659251486982647890394, -12.92096931784710929170611868178335939542,
             8.159367898576158643180400794539253485182, -0.7158497328140099722453054252582973869127e-1,
             -0.2826905039406838290900305721271224146718e-1, 0],
        ]
    )
    B = np.array(
        [
            0.9646076681806522951816731316512876333712e-1,
            0.01,
            0.4798896504144995747752495322905965199130,
            1.379008574103741893192274821856872770756,
            -3.290069515436080679901047585711363850116,
            2.324710524099773982415355918398765796109,
        ]
    )
    #: ``B`` (and 0 on the last row) minus the embedded fourth-order weights ``b̂``.
    error_weights = (
        np.concatenate((B, [0.0]))
        - np.array(
            [
                0.9468075576583945807478876255758922856118e-1,
                0.9183565540343253096776363936645313759814e-2,
                0.4877705284247615707855642599631228241517,
                1.234297566930478985655109673884237654036,
                -2.707712349983525454881109975059321670690,
                1.866628418170587035753719399566211498666,
                1.0 / 66.0,
            ]
        ),
    )
    P = _tsit5_dense()


def _dop853_tables() -> dict[str, np.ndarray]:
    """The DOP853 coefficients (Hairer's ``dop853.f``), 12 stages + 1 + 3 extras."""
    c = np.array(
        [
            0.0,
            0.526001519587677318785587544488e-01,
            0.789002279381515978178381316732e-01,
            0.118350341907227396726757197510,
            0.281649658092772603273242802490,
            0.333333333333333333333333333333,
            0.25,
            0.307692307692307692307692307692,
            0.651282051282051282051282051282,
            0.6,
            0.857142857142857142857142857142,
            1.0,
            1.0,
            0.1,
            0.2,
            0.777777777777777777777777777778,
        ]
    )
    a = np.zeros((16, 16))
    rows = {
        1: {0: 5.26001519587677318785587544488e-2},
        2: {0: 1.97250569845378994544595329183e-2, 1: 5.91751709536136983633785987549e-2},
        3: {0: 2.95875854768068491816892993775e-2, 2: 8.87627564304205475450678981324e-2},
        4: {
            0: 2.41365134159266685502369798665e-1,
            2: -8.84549479328286085344864962717e-1,
            3: 9.24834003261792003115737966543e-1,
        },
        5: {
            0: 3.7037037037037037037037037037e-2,
            3: 1.70828608729473871279604482173e-1,
            4: 1.25467687566822425016691814123e-1,
        },
        6: {
            0: 3.7109375e-2,
            3: 1.70252211019544039314978060272e-1,
            4: 6.02165389804559606850219397283e-2,
            5: -1.7578125e-2,
        },
        7: {
            0: 3.70920001185047927108779319836e-2,
            3: 1.70383925712239993810214054705e-1,
            4: 1.07262030446373284651809199168e-1,
            5: -1.53194377486244017527936158236e-2,
            6: 8.27378916381402288758473766002e-3,
        },
        8: {
            0: 6.24110958716075717114429577812e-1,
            3: -3.36089262944694129406857109825,
            4: -8.68219346841726006818189891453e-1,
            5: 2.75920996994467083049415600797e1,
            6: 2.01540675504778934086186788979e1,
            7: -4.34898841810699588477366255144e1,
        },
        9: {
            0: 4.77662536438264365890433908527e-1,
            3: -2.48811461997166764192642586468,
            4: -5.90290826836842996371446475743e-1,
            5: 2.12300514481811942347288949897e1,
            6: 1.52792336328824235832596922938e1,
            7: -3.32882109689848629194453265587e1,
            8: -2.03312017085086261358222928593e-2,
        },
        10: {
            0: -9.3714243008598732571704021658e-1,
            3: 5.18637242884406370830023853209,
            4: 1.09143734899672957818500254654,
            5: -8.14978701074692612513997267357,
            6: -1.85200656599969598641566180701e1,
            7: 2.27394870993505042818970056734e1,
            8: 2.49360555267965238987089396762,
            9: -3.0467644718982195003823669022,
        },
        11: {
            0: 2.27331014751653820792359768449,
            3: -1.05344954667372501984066689879e1,
            4: -2.00087205822486249909675718444,
            5: -1.79589318631187989172765950534e1,
            6: 2.79488845294199600508499808837e1,
            7: -2.85899827713502369474065508674,
            8: -8.87285693353062954433549289258,
            9: 1.23605671757943030647266201528e1,
            10: 6.43392746015763530355970484046e-1,
        },
        12: {
            0: 5.42937341165687622380535766363e-2,
            5: 4.45031289275240888144113950566,
            6: 1.89151789931450038304281599044,
            7: -5.8012039600105847814672114227,
            8: 3.1116436695781989440891606237e-1,
            9: -1.52160949662516078556178806805e-1,
            10: 2.01365400804030348374776537501e-1,
            11: 4.47106157277725905176885569043e-2,
        },
        13: {
            0: 5.61675022830479523392909219681e-2,
            6: 2.53500210216624811088794765333e-1,
            7: -2.46239037470802489917441475441e-1,
            8: -1.24191423263816360469010140626e-1,
            9: 1.5329179827876569731206322685e-1,
            10: 8.20105229563468988491666602057e-3,
            11: 7.56789766054569976138603589584e-3,
            12: -8.298e-3,
        },
        14: {
            0: 3.18346481635021405060768473261e-2,
            5: 2.83009096723667755288322961402e-2,
            6: 5.35419883074385676223797384372e-2,
            7: -5.49237485713909884646569340306e-2,
            10: -1.08347328697249322858509316994e-4,
            11: 3.82571090835658412954920192323e-4,
            12: -3.40465008687404560802977114492e-4,
            13: 1.41312443674632500278074618366e-1,
        },
        15: {
            0: -4.28896301583791923408573538692e-1,
            5: -4.69762141536116384314449447206,
            6: 7.68342119606259904184240953878,
            7: 4.06898981839711007970213554331,
            8: 3.56727187455281109270669543021e-1,
            12: -1.39902416515901462129418009734e-3,
            13: 2.9475147891527723389556272149,
            14: -9.15095847217987001081870187138,
        },
    }
    for i, row in rows.items():
        for j, v in row.items():
            a[i, j] = v
    b = a[12, :12].copy()
    e3 = np.zeros(13)
    e3[:12] = b
    e3[0] -= 0.244094488188976377952755905512
    e3[8] -= 0.733846688281611857341361741547
    e3[11] -= 0.220588235294117647058823529412e-1
    e5 = np.zeros(13)
    e5[[0, 5, 6, 7, 8, 9, 10, 11]] = [
        0.1312004499419488073250102996e-1,
        -0.1225156446376204440720569753e1,
        -0.4957589496572501915214079952,
        0.1664377182454986536961530415e1,
        -0.3503288487499736816886487290,
        0.3341791187130174790297318841,
        0.8192320648511571246570742613e-1,
        -0.2235530786388629525884427845e-1,
    ]
    d = np.zeros((4, 16))
    cols = [0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
    d[0, cols] = [
        -0.84289382761090128651353491142e1,
        0.56671495351937776962531783590,
        -0.30689499459498916912797304727e1,
        0.23846676565120698287728149680e1,
        0.21170345824450282767155149946e1,
        -0.87139158377797299206789907490,
        0.22404374302607882758541771650e1,
        0.63157877876946881815570249290,
        -0.88990336451333310820698117400e-1,
        0.18148505520854727256656404962e2,
        -0.91946323924783554000451984436e1,
        -0.44360363875948939664310572000e1,
    ]
    d[1, cols] = [
        0.10427508642579134603413151009e2,
        0.24228349177525818288430175319e3,
        0.16520045171727028198505394887e3,
        -0.37454675472269020279518312152e3,
        -0.22113666853125306036270938578e2,
        0.77334326684722638389603898808e1,
        -0.30674084731089398182061213626e2,
        -0.93321305264302278729567221706e1,
        0.15697238121770843886131091075e2,
        -0.31139403219565177677282850411e2,
        -0.93529243588444783865713862664e1,
        0.35816841486394083752465898540e2,
    ]
    d[2, cols] = [
        0.19985053242002433820987653617e2,
        -0.38703730874935176555105901742e3,
        -0.18917813819516756882830838328e3,
        0.52780815920542364900561016686e3,
        -0.11573902539959630126141871134e2,
        0.68812326946963000169666922661e1,
        -0.10006050966910838403183860980e1,
        0.77771377980534432092869265740,
        -0.27782057523535084065932004339e1,
        -0.60196695231264120758267380846e2,
        0.84320405506677161018159903784e2,
        0.11992291136182789328035130030e2,
    ]
    d[3, cols] = [
        -0.25693933462703749003312586129e2,
        -0.15418974869023643374053993627e3,
        -0.23152937917604549567536039109e3,
        0.35763911791061412378285349910e3,
        0.93405324183624310003907691704e2,
        -0.37458323136451633156875139351e2,
        0.10409964950896230045147246184e3,
        0.29840293426660503123344363579e2,
        -0.43533456590011143754432175058e2,
        0.96324553959188282948394950600e2,
        -0.39177261675615439165231486172e2,
        -0.14972683625798562581422125276e3,
    ]
    return {"c": c, "a": a, "b": b, "e3": e3, "e5": e5, "d": d}


_D853 = _dop853_tables()


class Dop853(AbstractRungeKutta):
    """Dormand–Prince 8(5,3) as in Hairer's DOP853, with its seventh-order interpolant.

    Eighth-order steps; the error combines a fifth- and a third-order
    estimate; the dense output needs three extra flow evaluations, made only
    on steps where something is saved or an event is located.
    """

    name = "dop853"
    order = 8
    error_order = 7
    C = _D853["c"][:12]
    A = _D853["a"][:12, :12]
    B = _D853["b"]
    error_weights = (_D853["e5"], _D853["e3"])
    C_extra = _D853["c"][13:]
    A_extra = _D853["a"][13:]
    D = _D853["d"]

    def error_norm(self, sq: list[np.ndarray], n: int) -> np.ndarray:
        err5, err3 = sq
        denom = err5 + 0.01 * err3
        safe = np.where(denom > 0, denom, 1.0)
        # a NaN denominator (non-finite stages) must give a NaN norm, never 0 (= accept)
        return np.where(denom > 0, err5 / np.sqrt(safe * n), np.where(np.isnan(denom), np.nan, 0.0))

    def dense_coefficients(
        self, hk: np.ndarray, y_old: np.ndarray, y_new: np.ndarray
    ) -> np.ndarray:
        dy = y_new - y_old
        F = np.empty((7, *dy.shape))
        F[0] = dy
        F[1] = hk[0] - dy
        F[2] = 2 * dy - (hk[12] + hk[0])
        tmp = np.empty(dy.shape)
        for q in range(self.D.shape[0]):
            lincomb(self.D[q], hk[:16], F[3 + q], tmp)
        return F

    def dense_eval(self, F: np.ndarray, y_old: np.ndarray, theta: np.ndarray) -> np.ndarray:
        th = theta[:, None]
        y = np.zeros_like(y_old)
        for i, f in enumerate(F[::-1]):
            y += f
            y *= th if i % 2 == 0 else (1 - th)
        return y + y_old


METHODS: dict[str, AbstractRungeKutta] = {m.name: m() for m in (Euler, Dopri5, Tsit5, Dop853)}


def as_method(method: str | AbstractRungeKutta | type[AbstractRungeKutta]) -> AbstractRungeKutta:
    """The method named ``method`` in :data:`METHODS`, or ``method`` itself (an instance or a class).

    Raises
    ------
    TypeError
        Neither a string nor an :class:`AbstractRungeKutta`.
    ValueError
        An unknown name.
    """
    if isinstance(method, type) and issubclass(method, AbstractRungeKutta):
        return method()
    if isinstance(method, AbstractRungeKutta):
        return method
    if not isinstance(method, str):
        raise TypeError(
            f"method: expected a method name or a linfa.integrate.AbstractRungeKutta, got {type(method).__name__}"
        )
    if method not in METHODS:
        raise ValueError(f"method: expected one of {', '.join(METHODS)}, got {method!r}")
    return METHODS[method]
