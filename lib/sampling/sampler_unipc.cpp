// UniPC (Zhao et al. 2023, arXiv:2302.04867): the multistep predictor (UniP) and corrector
// (UniC), B(h) = h (bh1) or e^h − 1 (bh2), orders 1–3, reproducing diffusers'
// UniPCMultistepScheduler with predict_x0 op by op in f32 (reference/wan.md §3.1).
#include "sampling/exact_float.hpp"
// (first: the update must round like torch, op by op)
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "reel/samplers.hpp"
#include "sampling/sampler_common.hpp"

namespace reel {

namespace {

using detail::for_each_element;

// Each log is rounded to f32 from double: torch's f32 log is correctly rounded in nearly all
// cases, glibc's logf is not always (measured: 3 of 504 schedule sigmas differ by an ulp).
float log_f32(float v) { return float(std::log(double(v))); }
float lambda_of(NoisePath path, float sigma) { return log_f32(path_alpha(path, sigma)) - log_f32(sigma); }

// Solves the n×n system A·x = b (n <= 3) in double with partial pivoting; torch.linalg.solve
// runs LAPACK in f32 here, so the rhos agree to a few f32 ulps.
std::vector<float> solve(std::vector<std::vector<double>> a, std::vector<double> b) {
  const size_t n = b.size();
  for (size_t c = 0; c < n; ++c) {
    size_t p = c;
    for (size_t r = c + 1; r < n; ++r)
      if (std::fabs(a[r][c]) > std::fabs(a[p][c])) p = r;
    std::swap(a[c], a[p]);
    std::swap(b[c], b[p]);
    require(a[c][c] != 0 && std::isfinite(a[c][c]), StatusCode::invalid_argument,
            "unipc: singular coefficient system (repeated or non-finite log-SNR steps)");
    for (size_t r = c + 1; r < n; ++r) {
      const double f = a[r][c] / a[c][c];
      for (size_t k = c; k < n; ++k) a[r][k] -= f * a[c][k];
      b[r] -= f * b[c];
    }
  }
  std::vector<float> x(n);
  for (size_t c = n; c-- > 0;) {
    double s = b[c];
    for (size_t k = c + 1; k < n; ++k) s -= a[c][k] * x[k];
    x[c] = float(s / a[c][c]);
  }
  return x;
}

// The scalars of one UniP or UniC update from σ_s0 to σ_t, with history sigmas σ_si (newest first).
struct Update {
  float c_x = 0, c_m0 = 0, c_res = 0;  // x_t = c_x·x − c_m0·m0 − c_res·(Σ ρ_k·D1_k [+ ρ_last·D1_t])
  std::vector<float> rks;              // r_k = (λ_si − λ_s0)/h, k = 1..order−1
  std::vector<std::vector<double>> R;  // R[i][k] = r_k^i, with r_order = 1
  std::vector<double> b;
};

Update make_update(NoisePath path, UniPCVariant variant, int order, float sigma_t, float sigma_s0,
                   const std::vector<float>& sigma_si) {
  Update u;
  const float alpha_t = path_alpha(path, sigma_t);
  const float lambda_t = lambda_of(path, sigma_t), lambda_s0 = lambda_of(path, sigma_s0);
  const float h = lambda_t - lambda_s0;
  for (int k = 1; k < order; ++k) u.rks.push_back((lambda_of(path, sigma_si[size_t(k - 1)]) - lambda_s0) / h);
  std::vector<float> rks = u.rks;
  rks.push_back(1.0f);
  const float hh = -h;  // predict_x0
  // expm1 rounded from double: torch's f32 expm1 is correctly rounded in nearly all cases,
  // glibc's expm1f differs from it in ~10% of arguments.
  const float h_phi_1 = float(std::expm1(double(hh)));
  float h_phi_k = h_phi_1 / hh - 1.0f;
  int factorial = 1;
  const float B_h = variant == UniPCVariant::bh1 ? hh : h_phi_1;
  for (int i = 1; i <= order; ++i) {
    std::vector<double> row;
    for (float r : rks) row.push_back(i == 1 ? 1.0 : i == 2 ? double(r) : double(r * r));
    u.R.push_back(row);
    u.b.push_back(double(h_phi_k * float(factorial) / B_h));
    factorial *= i + 1;
    h_phi_k = h_phi_k / hh - float(1.0 / factorial);
  }
  u.c_x = sigma_t / sigma_s0;
  u.c_m0 = alpha_t * h_phi_1;
  u.c_res = alpha_t * B_h;
  return u;
}

class UniPCSampler final : public Sampler {
 public:
  explicit UniPCSampler(UniPCConfig c) : c_(c) {
    require(c.order >= 1 && c.order <= 3, StatusCode::invalid_argument,
            "unipc: order must be 1, 2 or 3, got " + std::to_string(c.order));
    require(c.variant == UniPCVariant::bh1 || c.variant == UniPCVariant::bh2, StatusCode::invalid_argument,
            "unipc: variant must be bh1 or bh2");
  }
  std::string name() const override {
    return "unipc:order=" + std::to_string(c_.order) + ",variant=" + (c_.variant == UniPCVariant::bh1 ? "bh1" : "bh2") +
           ",lower_order_final=" + (c_.lower_order_final ? "true" : "false") +
           ",corrector=" + (c_.corrector ? "true" : "false");
  }

  Tensor sample(Denoiser& denoiser, Tensor x_in, std::span<const float> sigmas, Rng&, StepObserver& observer) override {
    Tensor x = start_sample(x_in, "unipc");
    const NoisePath path = denoiser.path();
    check_sigmas(sigmas, path, "unipc");
    require(path != NoisePath::flow || sigmas[0] < 1.0f, StatusCode::invalid_argument,
            "unipc: sigma[0] must be < 1 on the flow path (log-SNR is -inf at 1); the flow_unipc schedule "
            "starts at 1 - 1e-6");
    StepReporter report(observer, denoiser, sigmas, "unipc");
    const int steps = int(sigmas.size()) - 1;
    std::vector<Tensor> hist;  // x0 predictions of the latest steps, newest last
    Tensor last_sample;        // the sample the previous predictor started from
    int this_order = 0, lower_order_nums = 0;
    for (int i = 0; i < steps; ++i) {
      report.begin_step();
      const Denoised den = denoise_checked(denoiser, x, sigmas[size_t(i)], "unipc");
      if (c_.corrector && i > 0 && last_sample.defined()) x = correct(path, sigmas, i, this_order, hist, last_sample, den.x0);
      hist.push_back(den.x0);
      if (int(hist.size()) > c_.order) hist.erase(hist.begin());
      this_order = c_.lower_order_final ? std::min(c_.order, steps - i) : c_.order;
      this_order = std::min(this_order, lower_order_nums + 1);
      if (sigmas[size_t(i) + 1] == 0.0f) this_order = 1;  // higher orders divide by h = ∞ here
      last_sample = x;
      x = predict(path, sigmas, i, this_order, hist, x);
      lower_order_nums = std::min(lower_order_nums + 1, c_.order);
      report.end_step(i, x, den.x0, 1);
    }
    return x;
  }

 private:
  UniPCConfig c_;

  // D1_k = (m_k − m0)/r_k for the history entries older than m0 (k = 1..order−1).
  static std::vector<Tensor> differences(const std::vector<Tensor>& older, const Tensor& m0, const std::vector<float>& rks) {
    std::vector<Tensor> out;
    const float* m0p = m0.data<float>();
    for (size_t k = 0; k < rks.size(); ++k) {
      Tensor d = Tensor::empty(m0.shape(), DType::f32);
      const float* mp = older[k].data<float>();
      float* dp = d.data<float>();
      const float rk = rks[k];
      for_each_element(m0.numel(), [&](int64_t j) { dp[j] = (mp[j] - m0p[j]) / rk; });
      out.push_back(d);
    }
    return out;
  }

  // UniP from σ_i to σ_{i+1}; hist.back() is the x0 made at σ_i.
  Tensor predict(NoisePath path, std::span<const float> sigmas, int i, int order, const std::vector<Tensor>& hist,
                 const Tensor& x) const {
    std::vector<float> sigma_si;
    std::vector<Tensor> older;
    for (int k = 1; k < order; ++k) {
      sigma_si.push_back(sigmas[size_t(i - k)]);
      older.push_back(hist[hist.size() - 1 - size_t(k)]);
    }
    const Update u = make_update(path, c_.variant, order, sigmas[size_t(i) + 1], sigmas[size_t(i)], sigma_si);
    std::vector<float> rhos;
    if (order == 2) rhos = {0.5f};
    if (order == 3) rhos = solve({{u.R[0][0], u.R[0][1]}, {u.R[1][0], u.R[1][1]}}, {u.b[0], u.b[1]});
    const Tensor& m0 = hist.back();
    const std::vector<Tensor> D1 = differences(older, m0, u.rks);
    Tensor out = Tensor::empty(x.shape(), DType::f32);
    const float* xp = x.data<float>();
    const float* m0p = m0.data<float>();
    const float* d0 = D1.size() > 0 ? D1[0].data<float>() : nullptr;
    const float* d1 = D1.size() > 1 ? D1[1].data<float>() : nullptr;
    float* op = out.data<float>();
    for_each_element(x.numel(), [&](int64_t j) {
      const float base = u.c_x * xp[j] - u.c_m0 * m0p[j];
      if (!d0) {
        op[j] = base;  // diffusers subtracts α·B(h)·0 here (NaN for bh1 at σ = 0): the term is 0
        return;
      }
      float res = rhos[0] * d0[j];
      if (d1) res = res + rhos[1] * d1[j];
      op[j] = base - u.c_res * res;
    });
    return out;
  }

  // UniC at step i: corrects the sample predicted by step i−1 (from last_sample at σ_{i−1} to
  // σ_i) with model_t, the x0 just made at σ_i. hist.back() is step i−1's x0.
  Tensor correct(NoisePath path, std::span<const float> sigmas, int i, int order, const std::vector<Tensor>& hist,
                 const Tensor& last_sample, const Tensor& model_t) const {
    std::vector<float> sigma_si;
    std::vector<Tensor> older;
    for (int k = 1; k < order; ++k) {
      sigma_si.push_back(sigmas[size_t(i - k - 1)]);
      older.push_back(hist[hist.size() - 1 - size_t(k)]);
    }
    const Update u = make_update(path, c_.variant, order, sigmas[size_t(i)], sigmas[size_t(i) - 1], sigma_si);
    const std::vector<float> rhos = order == 1 ? std::vector<float>{0.5f} : solve(u.R, u.b);
    const Tensor& m0 = hist.back();
    const std::vector<Tensor> D1 = differences(older, m0, u.rks);
    Tensor out = Tensor::empty(last_sample.shape(), DType::f32);
    const float* xp = last_sample.data<float>();
    const float* m0p = m0.data<float>();
    const float* mt = model_t.data<float>();
    const float* d0 = D1.size() > 0 ? D1[0].data<float>() : nullptr;
    const float* d1 = D1.size() > 1 ? D1[1].data<float>() : nullptr;
    const float rho_t = rhos.back();
    float* op = out.data<float>();
    for_each_element(out.numel(), [&](int64_t j) {
      const float base = u.c_x * xp[j] - u.c_m0 * m0p[j];
      const float d1_t = mt[j] - m0p[j];
      float corr = rho_t * d1_t;
      if (d0) {
        float res = rhos[0] * d0[j];
        if (d1) res = res + rhos[1] * d1[j];
        corr = res + corr;
      }
      op[j] = base - u.c_res * corr;
    });
    return out;
  }
};

}  // namespace

std::unique_ptr<Sampler> make_unipc_sampler(const UniPCConfig& config) { return std::make_unique<UniPCSampler>(config); }

}  // namespace reel
