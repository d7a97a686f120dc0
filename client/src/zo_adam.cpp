#include "pocketllm/client/zo_adam.h"

#include <cmath>

#include <Eigen/Cholesky>
#include <Eigen/Core>

namespace pocketllm {
namespace {

using RowMatrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

bool all_finite(const std::vector<double>& v) {
  for (double x : v)
    if (!std::isfinite(x)) return false;
  return true;
}

// Solves G x = rhs for the symmetric positive definite G held in its lower triangle; false when G is
// numerically singular (the fit is not determined) or the answer is not finite.
template <class M>
bool solve_spd(const M& lower, const Eigen::VectorXd& rhs, Eigen::VectorXd* x) {
  Eigen::LLT<Eigen::MatrixXd, Eigen::Lower> llt(lower);
  if (llt.info() != Eigen::Success || !(llt.rcond() > 1e-12)) return false;
  *x = llt.solve(rhs);
  return x->allFinite();
}

}  // namespace

size_t trainable_coordinates(const std::vector<NamedTensor>& tensors) {
  size_t d = 0;
  for (const auto& t : tensors) for_each_span(t, [&](size_t, size_t n) { d += n; });
  return d;
}

int default_adam_directions(size_t d) {
  const size_t k = (5 * (d + 1) + 3) / 4;
  return static_cast<int>(k + (k & 1));
}

void DirectionBasis::build(Distribution dist, const std::vector<uint64_t>& seeds, const std::vector<NamedTensor>& tensors) {
  k_ = seeds.size();
  d_ = trainable_coordinates(tensors);
  u_.assign(k_ * d_, 0.0);
  std::vector<float> z;
  for (size_t k = 0; k < k_; ++k) {
    double* row = u_.data() + k * d_;
    size_t at = 0;
    for (const auto& t : tensors) {
      const uint64_t tag = tensor_tag(t.name);
      for_each_span(t, [&](size_t begin, size_t n) {
        z.resize(n);
        generate_z(dist, seeds[k], tag, begin, n, z.data());
        for (size_t i = 0; i < n; ++i) row[at + i] = static_cast<double>(t.scale) * z[i];
        at += n;
      });
    }
  }
  // U^T U (lower triangle), shared by both solves.
  const Eigen::Map<const RowMatrix> u(u_.data(), static_cast<Eigen::Index>(k_), static_cast<Eigen::Index>(d_));
  gram_.assign(d_ * d_, 0.0);
  Eigen::Map<Eigen::MatrixXd> gram(gram_.data(), static_cast<Eigen::Index>(d_), static_cast<Eigen::Index>(d_));
  gram.selfadjointView<Eigen::Lower>().rankUpdate(u.transpose());
}

bool DirectionBasis::gradient(const std::vector<double>& losses, double eps, std::vector<double>* g) const {
  if (losses.size() != k_ || k_ <= d_ || d_ == 0 || !all_finite(losses) || !(eps > 0)) return false;
  const Eigen::Map<const RowMatrix> u(u_.data(), static_cast<Eigen::Index>(k_), static_cast<Eigen::Index>(d_));
  // Centring rows and losses is the least-squares fit with an intercept.
  double mean_loss = 0;
  for (double l : losses) mean_loss += l;
  mean_loss /= static_cast<double>(k_);
  Eigen::VectorXd b(static_cast<Eigen::Index>(k_));
  for (size_t k = 0; k < k_; ++k) b[static_cast<Eigen::Index>(k)] = (losses[k] - mean_loss) / eps;
  const Eigen::VectorXd mean_row = u.colwise().mean().transpose();
  Eigen::MatrixXd gram = Eigen::Map<const Eigen::MatrixXd>(gram_.data(), static_cast<Eigen::Index>(d_), static_cast<Eigen::Index>(d_));
  gram.selfadjointView<Eigen::Lower>().rankUpdate(mean_row, -static_cast<double>(k_));
  const Eigen::VectorXd rhs = u.transpose() * b;  // the centred rows' product: b sums to zero
  Eigen::VectorXd x;
  if (!solve_spd(gram, rhs, &x)) return false;
  g->assign(x.data(), x.data() + x.size());
  return true;
}

bool DirectionBasis::coefficients(const std::vector<double>& delta, std::vector<double>* c) const {
  if (delta.size() != d_ || k_ < d_ || d_ == 0 || !all_finite(delta)) return false;
  const Eigen::Map<const RowMatrix> u(u_.data(), static_cast<Eigen::Index>(k_), static_cast<Eigen::Index>(d_));
  const Eigen::Map<const Eigen::MatrixXd> gram(gram_.data(), static_cast<Eigen::Index>(d_), static_cast<Eigen::Index>(d_));
  const Eigen::Map<const Eigen::VectorXd> rhs(delta.data(), static_cast<Eigen::Index>(d_));
  Eigen::VectorXd y;
  if (!solve_spd(gram, rhs, &y)) return false;
  const Eigen::VectorXd x = u * y;  // c = U (U^T U)^-1 delta: in the row space, so the shortest
  c->assign(x.data(), x.data() + x.size());
  return all_finite(*c);
}

void AdamMoments::update(const std::vector<double>& g, double lr, std::vector<double>* delta) {
  if (m_.size() != g.size()) {
    m_.assign(g.size(), 0.0);
    v_.assign(g.size(), 0.0);
    t_ = 0;
  }
  ++t_;
  const double c1 = 1.0 - std::pow(beta1_, static_cast<double>(t_)), c2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
  delta->resize(g.size());
  for (size_t i = 0; i < g.size(); ++i) {
    const double gi = static_cast<double>(static_cast<float>(g[i]));
    m_[i] = beta1_ * m_[i] + (1.0 - beta1_) * gi;
    v_[i] = beta2_ * v_[i] + (1.0 - beta2_) * gi * gi;
    (*delta)[i] = lr * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + eps_);
  }
}

}  // namespace pocketllm
