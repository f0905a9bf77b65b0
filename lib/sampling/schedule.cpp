// The schedules of schedule.hpp: diffusers' flow schedules reproduced op by op (numpy float64
// then a cast to f32; FlowMatchEuler's training sigmas in f32), and the generic sigma shapes.
#include "sampling/exact_float.hpp"
// (first: no FMA contraction below)
#include <cmath>
#include <cstdint>
#include <string>

#include "reel/schedule.hpp"
#include "reel/status.hpp"

namespace reel {

namespace {

constexpr int kMaxSteps = 100000;

void check_steps(int steps, const char* what) {
  require(steps >= 1 && steps <= kMaxSteps, StatusCode::invalid_argument,
          std::string(what) + ": steps must be in [1, 100000], got " + std::to_string(steps));
}
void check_shift(double shift, const char* what) {
  require(std::isfinite(shift) && shift > 0, StatusCode::invalid_argument,
          std::string(what) + ": shift must be a finite number > 0, got " + std::to_string(shift));
}
void check_train_steps(int t, const char* what) {
  require(t >= 1 && t <= 1000000, StatusCode::invalid_argument,
          std::string(what) + ": num_train_timesteps must be in [1, 1000000], got " + std::to_string(t));
}
void check_range(double sigma_min, double sigma_max, const char* what) {
  require(std::isfinite(sigma_min) && std::isfinite(sigma_max) && sigma_min >= 0 && sigma_max >= sigma_min,
          StatusCode::invalid_argument,
          std::string(what) + ": need 0 <= sigma_min <= sigma_max (finite), got sigma_min " +
              std::to_string(sigma_min) + ", sigma_max " + std::to_string(sigma_max));
}

// numpy.linspace(start, stop, num) in float64, element by element as numpy computes it:
// step = (stop − start)/(num − 1); y_k = k·step + start; the last element is `stop`.
std::vector<double> np_linspace(double start, double stop, int num) {
  std::vector<double> y(static_cast<size_t>(num));
  const double delta = stop - start;
  const int div = num - 1;
  for (int k = 0; k < num; ++k) {
    double v;
    if (div > 0) {
      const double step = delta / div;
      v = step == 0 ? double(k) / div * delta : double(k) * step;
    } else {
      v = double(k) * delta;
    }
    y[size_t(k)] = v + start;
  }
  if (num > 1) y.back() = stop;
  return y;
}

std::vector<float> flow_timesteps(const std::vector<float>& sigmas, int steps, int T) {
  std::vector<float> t(static_cast<size_t>(steps));
  for (int k = 0; k < steps; ++k) t[size_t(k)] = float(double(sigmas[size_t(k)]) * T);
  return t;
}

// N sigmas of a shape, then a final 0, timesteps σ·T.
Schedule with_final_zero(const std::vector<double>& sigmas, int T) {
  Schedule s;
  for (double v : sigmas) s.sigmas.push_back(float(v));
  s.sigmas.push_back(0.0f);
  s.timesteps = flow_timesteps(s.sigmas, int(sigmas.size()), T);
  return s;
}

// log Γ-based prefactor and Lentz's continued fraction for the regularized incomplete beta
// I_x(a, b) (valid for x < (a+1)/(a+b+2); the other side uses I_x(a,b) = 1 − I_{1−x}(b,a)).
double incomplete_beta_cf(double x, double a, double b) {
  constexpr double tiny = 1e-300, eps = 1e-16;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1.0);
  if (std::fabs(d) < tiny) d = tiny;
  d = 1.0 / d;
  double f = d;
  for (int m = 1; m <= 10000; ++m) {
    const double m2 = 2.0 * m;
    double num = m * (b - m) * x / ((a + m2 - 1.0) * (a + m2));  // even term
    d = 1.0 + num * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1.0 + num / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    f *= d * c;
    num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0));  // odd term
    d = 1.0 + num * d;
    if (std::fabs(d) < tiny) d = tiny;
    c = 1.0 + num / c;
    if (std::fabs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    f *= delta;
    if (std::fabs(delta - 1.0) < eps) break;
  }
  return f;
}

double regularized_incomplete_beta(double x, double a, double b) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double log_front =
      std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  if (x < (a + 1.0) / (a + b + 2.0)) return std::exp(log_front) * incomplete_beta_cf(x, a, b) / a;
  return 1.0 - std::exp(log_front) * incomplete_beta_cf(1.0 - x, b, a) / b;
}

}  // namespace

double beta_ppf(double p, double a, double b) {
  require(std::isfinite(a) && std::isfinite(b) && a > 0 && b > 0, StatusCode::invalid_argument,
          "beta_ppf: alpha and beta must be finite and > 0");
  require(p >= 0 && p <= 1, StatusCode::invalid_argument, "beta_ppf: p must be in [0, 1]");
  if (p == 0) return 0;
  if (p == 1) return 1;
  double lo = 0, hi = 1;
  for (int i = 0; i < 200 && hi - lo > 0; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    (regularized_incomplete_beta(mid, a, b) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

Schedule flow_unipc_schedule(int steps, double shift, int T) {
  check_steps(steps, "flow_unipc schedule");
  check_shift(shift, "flow_unipc schedule");
  check_train_steps(T, "flow_unipc schedule");
  std::vector<double> sig = np_linspace(1.0, 1.0 / T, steps + 1);
  sig.pop_back();
  for (double& v : sig) v = flow_shift(v, shift);
  if (std::fabs(sig[0] - 1.0) < 1e-6) sig[0] -= 1e-6;
  Schedule s;
  for (double v : sig) {
    s.sigmas.push_back(float(v));
    s.timesteps.push_back(float(int64_t(v * T)));  // numpy astype(int64): truncation
  }
  s.sigmas.push_back(0.0f);
  return s;
}

Schedule flow_euler_schedule(int steps, double shift, int T) {
  check_steps(steps, "flow_euler schedule");
  check_shift(shift, "flow_euler schedule");
  check_train_steps(T, "flow_euler schedule");
  // Training sigmas in f32 (torch): S(t/T) for t = T..1; only the two ends are used.
  const auto shift_f32 = [shift](float sigma) {
    const float s = float(shift);
    return (s * sigma) / (1.0f + (float(shift - 1.0) * sigma));
  };
  const double sigma_max = shift_f32(float(T) / float(T));
  const double sigma_min = shift_f32(1.0f / float(T));
  const std::vector<double> t = np_linspace(sigma_max * T, sigma_min * T, steps);
  Schedule s;
  for (double v : t) {
    const float sigma = float(flow_shift(v / T, shift));  // the shift, a second time (float64)
    s.sigmas.push_back(sigma);
    s.timesteps.push_back(sigma * float(T));  // f32, not rounded
  }
  s.sigmas.push_back(0.0f);
  return s;
}

Schedule flow_dpm_schedule(int steps, double shift, int T) {
  check_steps(steps, "flow_dpm schedule");
  check_shift(shift, "flow_dpm schedule");
  check_train_steps(T, "flow_dpm schedule");
  const std::vector<double> alphas = np_linspace(1.0, 1.0 / T, steps + 1);
  Schedule s;
  for (int k = 0; k < steps; ++k) {  // flipped, without the last (S(0) = 0)
    const double v = flow_shift(1.0 - alphas[size_t(steps - k)], shift);
    s.sigmas.push_back(float(v));
    s.timesteps.push_back(float(int64_t(v * T)));
  }
  s.sigmas.push_back(0.0f);
  return s;
}

Schedule flow_schedule(int steps, double shift, double sigma_max, double sigma_min, int T) {
  check_steps(steps, "flow schedule");
  check_shift(shift, "flow schedule");
  check_train_steps(T, "flow schedule");
  check_range(sigma_min, sigma_max, "flow schedule");
  require(sigma_max <= 1.0, StatusCode::invalid_argument, "flow schedule: sigma_max must be <= 1 (flow sigmas are in [0, 1])");
  Schedule s;
  for (double v : np_linspace(sigma_max, sigma_min, steps + 1)) s.sigmas.push_back(float(flow_shift(v, shift)));
  s.timesteps = flow_timesteps(s.sigmas, steps, T);
  return s;
}

Schedule uniform_schedule(int steps, double sigma_max, double sigma_min, int T) {
  check_steps(steps, "uniform schedule");
  check_train_steps(T, "uniform schedule");
  check_range(sigma_min, sigma_max, "uniform schedule");
  Schedule s;
  for (double v : np_linspace(sigma_max, sigma_min, steps + 1)) s.sigmas.push_back(float(v));
  s.timesteps = flow_timesteps(s.sigmas, steps, T);
  return s;
}

Schedule karras_schedule(int steps, double sigma_min, double sigma_max, double rho, int T) {
  check_steps(steps, "karras schedule");
  check_train_steps(T, "karras schedule");
  check_range(sigma_min, sigma_max, "karras schedule");
  require(std::isfinite(rho) && rho > 0, StatusCode::invalid_argument, "karras schedule: rho must be finite and > 0");
  const double min_inv = std::pow(sigma_min, 1.0 / rho), max_inv = std::pow(sigma_max, 1.0 / rho);
  std::vector<double> sig;
  for (double r : np_linspace(0.0, 1.0, steps)) sig.push_back(std::pow(max_inv + r * (min_inv - max_inv), rho));
  return with_final_zero(sig, T);
}

Schedule exponential_schedule(int steps, double sigma_min, double sigma_max, int T) {
  check_steps(steps, "exponential schedule");
  check_train_steps(T, "exponential schedule");
  check_range(sigma_min, sigma_max, "exponential schedule");
  require(sigma_min > 0, StatusCode::invalid_argument, "exponential schedule: sigma_min must be > 0 (log spacing)");
  std::vector<double> sig;
  for (double l : np_linspace(std::log(sigma_max), std::log(sigma_min), steps)) sig.push_back(std::exp(l));
  return with_final_zero(sig, T);
}

Schedule beta_schedule(int steps, double sigma_min, double sigma_max, double alpha, double beta, int T) {
  check_steps(steps, "beta schedule");
  check_train_steps(T, "beta schedule");
  check_range(sigma_min, sigma_max, "beta schedule");
  std::vector<double> sig;
  for (double u : np_linspace(0.0, 1.0, steps))
    sig.push_back(sigma_min + beta_ppf(1.0 - u, alpha, beta) * (sigma_max - sigma_min));
  return with_final_zero(sig, T);
}

Schedule custom_schedule(std::span<const float> sigmas, int T) {
  check_train_steps(T, "custom schedule");
  require(sigmas.size() >= 2, StatusCode::invalid_argument,
          "custom schedule: need at least 2 sigmas (N+1 for N steps), got " + std::to_string(sigmas.size()));
  for (size_t i = 0; i < sigmas.size(); ++i) {
    require(std::isfinite(sigmas[i]) && sigmas[i] >= 0, StatusCode::invalid_argument,
            "custom schedule: sigma[" + std::to_string(i) + "] must be finite and >= 0");
    require(i == 0 || sigmas[i] <= sigmas[i - 1], StatusCode::invalid_argument,
            "custom schedule: sigmas must not increase (sigma[" + std::to_string(i) + "] > sigma[" +
                std::to_string(i - 1) + "])");
  }
  Schedule s;
  s.sigmas.assign(sigmas.begin(), sigmas.end());
  s.timesteps = flow_timesteps(s.sigmas, int(sigmas.size()) - 1, T);
  return s;
}

}  // namespace reel
