// Adam from forward passes alone (docs/training.md "Adam over a full set of directions").
//
// A step evaluates the loss at theta + eps u_k for K >= d + 1 directions u_k = s ⊙ z(seed_k) over the d
// trainable elements (s the tensor's step scale), fits L_k = a + eps (U g)_k by least squares (the
// intercept a absorbs the loss at theta and the second-order term every direction shares), which gives
// every coordinate of the batch gradient g — what a single SPSA direction cannot (z ⊙ z = 1) — and feeds g
// to Adam. Adam's step delta is then written in the same directions: the minimum-norm c with U^T c = delta,
// logged as the plain entries (seed_k, c_k). Replay, resume and every consumer of entries apply it without
// knowing Adam exists. The cost is K forward passes a step, so it is for small trainable sets (norms,
// biases: d <= kMaxAdamCoordinates).
#pragma once

#include <cstdint>
#include <vector>

#include "pocketllm/common/perturbation.h"
#include "pocketllm/common/update_log.h"

namespace pocketllm {

// The largest trainable set Adam over full directions accepts: its d x d Gram matrix and K x d directions
// stay under ~300 MB of doubles.
constexpr size_t kMaxAdamCoordinates = 4096;

// Flattened trainable elements of `tensors` (their spans when rows are restricted).
size_t trainable_coordinates(const std::vector<NamedTensor>& tensors);

// Directions a step needs by default for d coordinates: 1.25 (d + 1), rounded up to an even count (the
// passes run in pairs). Enough over d + 1 that the least-squares fit is well conditioned (a K x d
// Rademacher matrix's singular values span about sqrt(K) +- sqrt(d)).
int default_adam_directions(size_t d);

// The K directions of one step, over the flattened trainable elements, and the two solves a step needs.
class DirectionBasis {
 public:
  // Row k = s ⊙ z(seeds[k]) over every trainable element, tensors in order.
  void build(Distribution dist, const std::vector<uint64_t>& seeds, const std::vector<NamedTensor>& tensors);
  // The gradient from one-sided losses L_k = loss(theta + eps u_k): least squares with an intercept.
  // False when the directions do not determine it (K <= d or a singular fit) or a value is not finite.
  bool gradient(const std::vector<double>& losses, double eps, std::vector<double>* g) const;
  // The minimum-norm coefficients c with sum_k c_k u_k = delta. False when not finite or singular.
  bool coefficients(const std::vector<double>& delta, std::vector<double>* c) const;

  size_t directions() const { return k_; }
  size_t coordinates() const { return d_; }

 private:
  size_t k_ = 0, d_ = 0;
  std::vector<double> u_;     // K x d, row-major
  std::vector<double> gram_;  // U^T U, d x d, lower triangle filled
};

// Adam's moments over the d coordinates. update() takes g rounded to float32 (what the log's losses
// reproduce on resume) and returns the step delta = lr * m_hat / (sqrt(v_hat) + eps) in double.
class AdamMoments {
 public:
  AdamMoments() = default;
  AdamMoments(double beta1, double beta2, double eps) : beta1_(beta1), beta2_(beta2), eps_(eps) {}
  void update(const std::vector<double>& g, double lr, std::vector<double>* delta);
  int64_t updates() const { return t_; }

 private:
  double beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8;
  std::vector<double> m_, v_;
  int64_t t_ = 0;
};

}  // namespace pocketllm
