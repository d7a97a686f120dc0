#!/usr/bin/env python3
"""RDP of the sampled Gaussian mechanism by direct numerical integration, in float64 with nothing but
the standard library: the independent check of privacy/src/accountant.cpp (its binomial expansion and
its erfc series are not used here).

For sampling rate q and noise multiplier sigma, the mechanism's outputs on neighbouring inputs are
mu0 = N(0, sigma^2) and mu1 = (1-q) N(0, sigma^2) + q N(1, sigma^2), and
    A_alpha = E_{z ~ mu0} [ (mu1(z) / mu0(z))^alpha ],   RDP(alpha) = log(A_alpha) / (alpha - 1),
with mu1/mu0 = (1-q) + q exp((2z - 1) / (2 sigma^2)). The integral is taken with Simpson's rule on a
grid fine enough (h = sigma / 2000) over the whole mass of the integrand. Where A is close to 1 it
integrates A - 1 directly (expm1/log1p), so small RDP values keep their relative precision.

Prints one JSON object per line: {"q", "sigma", "alpha", "rdp"}.
"""
import json
import math
import sys

CASES = [(q, s, a) for q in (0.001, 0.01, 0.05, 0.2) for s in (0.8, 1.0, 2.0, 4.0) for a in (1.5, 2, 3, 4.5, 8, 16, 32)]
CASES += [(0.5, 2.0, a) for a in (2, 5.5, 12)] + [(1.0, 1.5, a) for a in (2, 7)]


def log_ratio(z, q, sigma):
    x = (2 * z - 1) / (2 * sigma * sigma)
    if x > 30:  # q e^x dominates
        return x + math.log(q) + math.log1p((1 - q) * math.exp(-x) / q)
    return math.log1p(q * math.expm1(x))


def simpson(f, lo, hi, h):
    n = int(math.ceil((hi - lo) / h))
    n += n % 2
    h = (hi - lo) / n
    total = f(lo) + f(hi)
    for i in range(1, n):
        total += (4 if i % 2 else 2) * f(lo + i * h)
    return total * h / 3


def rdp(q, sigma, alpha):
    log_norm = -0.5 * math.log(2 * math.pi) - math.log(sigma)

    def log_integrand(z):
        return log_norm - z * z / (2 * sigma * sigma) + alpha * log_ratio(z, q, sigma)

    # The integrand's mass lies between the two Gaussians' centres, pulled right by alpha: cover generously.
    lo, hi = -40 * sigma, alpha + 40 * sigma
    h = sigma / 2000
    peak = max(log_integrand(lo + i * (hi - lo) / 4000) for i in range(4001))
    if peak > 5:  # A is large: integrate in scaled form, relative precision comes for free
        value = simpson(lambda z: math.exp(log_integrand(z) - peak), lo, hi, h)
        log_a = peak + math.log(value)
    else:  # A is near 1: integrate A - 1 = E[ratio^alpha - 1]
        def excess(z):
            base, lr = log_norm - z * z / (2 * sigma * sigma), alpha * log_ratio(z, q, sigma)
            if lr > 50:  # far in the tail: ratio^alpha dominates the 1, and the product stays finite in logs
                return math.exp(base + lr) - math.exp(base)
            return math.exp(base) * math.expm1(lr)
        log_a = math.log1p(simpson(excess, lo, hi, h))
    return log_a / (alpha - 1)


def main():
    cases = CASES if len(sys.argv) < 2 else CASES[: int(sys.argv[1])]
    for q, sigma, alpha in cases:
        print(json.dumps({"q": q, "sigma": sigma, "alpha": alpha, "rdp": rdp(q, sigma, alpha)}))


if __name__ == "__main__":
    main()
