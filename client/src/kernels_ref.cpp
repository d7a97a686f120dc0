#include "kernels_ref.h"

#include <cmath>
#include <vector>

namespace pocketllm::ref {

void linear(const float* x, size_t m, size_t k, const float* w, size_t n, const float* bias, float* y) {
  for (size_t r = 0; r < m; ++r)
    for (size_t j = 0; j < n; ++j) {
      double acc = bias ? bias[j] : 0.0;
      for (size_t i = 0; i < k; ++i) acc += static_cast<double>(x[r * k + i]) * w[j * k + i];
      y[r * n + j] = static_cast<float>(acc);
    }
}

void rms_norm(const float* x, size_t m, size_t d, const float* gamma, float eps, float* out) {
  for (size_t r = 0; r < m; ++r) {
    double ss = 0;
    for (size_t i = 0; i < d; ++i) ss += static_cast<double>(x[r * d + i]) * x[r * d + i];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    for (size_t i = 0; i < d; ++i) out[r * d + i] = static_cast<float>(gamma[i] * x[r * d + i] * inv);
  }
}

void layer_norm(const float* x, size_t m, size_t d, const float* gamma, const float* beta, float eps, float* out) {
  for (size_t r = 0; r < m; ++r) {
    double mean = 0, var = 0;
    for (size_t i = 0; i < d; ++i) mean += x[r * d + i];
    mean /= static_cast<double>(d);
    for (size_t i = 0; i < d; ++i) var += (x[r * d + i] - mean) * (x[r * d + i] - mean);
    var /= static_cast<double>(d);
    for (size_t i = 0; i < d; ++i)
      out[r * d + i] = static_cast<float>((x[r * d + i] - mean) / std::sqrt(var + eps) * gamma[i] + (beta ? beta[i] : 0.0));
  }
}

void rope(float* x, size_t m, size_t heads, size_t hd, const int32_t* positions, double theta) {
  // The textbook form: rotate pairs (i, i + hd/2) by pos * theta^(-2i/hd).
  for (size_t r = 0; r < m; ++r)
    for (size_t h = 0; h < heads; ++h) {
      float* v = x + (r * heads + h) * hd;
      std::vector<double> orig(v, v + hd);
      for (size_t i = 0; i < hd / 2; ++i) {
        const double angle = positions[r] * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
        v[i] = static_cast<float>(orig[i] * std::cos(angle) - orig[i + hd / 2] * std::sin(angle));
        v[i + hd / 2] = static_cast<float>(orig[i + hd / 2] * std::cos(angle) + orig[i] * std::sin(angle));
      }
    }
}

void attention(const AttentionShape& s, const float* q, const float* k, const float* v, const int32_t* key_len, float* out) {
  const size_t group = s.heads / s.kv_heads;
  for (size_t b = 0; b < s.batch; ++b)
    for (size_t h = 0; h < s.heads; ++h)
      for (size_t t = 0; t < s.tq; ++t) {
        const float* qv = q + ((b * s.tq + t) * s.heads + h) * s.head_dim;
        std::vector<double> w;
        std::vector<size_t> keys;
        for (size_t j = 0; j < s.tk; ++j) {
          if (j >= static_cast<size_t>(key_len[b])) continue;
          if (s.causal && j > s.past + t) continue;
          if (s.causal && s.window > 0 && s.past + t - j >= s.window) continue;  // outside the sliding window
          const float* kv = k + ((b * s.tk + j) * s.kv_heads + h / group) * s.head_dim;
          double dot = 0;
          for (size_t e = 0; e < s.head_dim; ++e) dot += static_cast<double>(qv[e]) * kv[e];
          w.push_back(s.scale != 0.0f ? dot * s.scale : dot / std::sqrt(static_cast<double>(s.head_dim)));
          keys.push_back(j);
        }
        double mx = -INFINITY, sum = 0;
        for (double x : w) mx = std::max(mx, x);
        for (double& x : w) sum += (x = std::exp(x - mx));
        float* o = out + ((b * s.tq + t) * s.heads + h) * s.head_dim;
        for (size_t e = 0; e < s.head_dim; ++e) {
          double acc = 0;
          for (size_t i = 0; i < keys.size(); ++i)
            acc += w[i] / sum * v[((b * s.tk + keys[i]) * s.kv_heads + h / group) * s.head_dim + e];
          o[e] = static_cast<float>(acc);
        }
      }
}

void silu_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    gate[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void gelu_tanh_mul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const double g = gate[i];
    gate[i] = static_cast<float>(0.5 * g * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g))) * up[i]);
  }
}

void softmax_rows(float* x, size_t m, size_t n) {
  for (size_t r = 0; r < m; ++r) {
    double mx = -INFINITY, sum = 0;
    for (size_t j = 0; j < n; ++j) mx = std::max(mx, static_cast<double>(x[r * n + j]));
    for (size_t j = 0; j < n; ++j) sum += std::exp(x[r * n + j] - mx);
    for (size_t j = 0; j < n; ++j) x[r * n + j] = static_cast<float>(std::exp(x[r * n + j] - mx) / sum);
  }
}

}  // namespace pocketllm::ref
