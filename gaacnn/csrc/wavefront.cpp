// GAACNN's wavefront coder in one C++ loop (paper Sec. III-E; gaacnn/context.py explains the order).
//
// Where this sits: ... h_s -> hyper parameters -> [this loop: per step, context taps -> entropy
// parameters -> mixture CDFs -> rANS] -> y_hat -> g_s (decoding), or -> bytes (encoding).
//
// The Python loop (GAACNN._wavefront_steps) spends ~1 ms of interpreter and dispatch overhead per
// step on ~40 elements; here the same steps run without it. The bits must not change, so every
// floating-point result that could depend on how it is computed is the same ATen call as in Python
// (context.entropy_parameters_at, context.mixture_cdfs): matmul and linear on tensors of the same shape
// and layout, softmax and softplus on the same strided views, and erf, which ATen computes with one
// vectorised function for every element whatever the layout (tested). What is written as plain loops
// is exact whatever the order: gathers and copies, IEEE-rounded single operations (+, -, *, /, clamp,
// round) applied in Python's order (compiled with -ffp-contract=off: no fused multiply-adds), a sum of
// integers below 2^24, and a cumulative sum accumulated in double as ATen's CPU cumsum does.
// tests/test_native.py compares CDF rows, bytes, symbols and images with the Python loop.
//
// The rANS coder is CompressAI's (rans64, 16-bit precision, 4-bit bypass for escapes); the decoder
// bounds every read by the stream: running out, or words left over at the end, is an error.

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace {

constexpr int kPrecision = 16;
constexpr uint64_t kRansL = 1ull << 31;
constexpr int kBypassBits = 4;
constexpr int kMaxBypass = (1 << kBypassBits) - 1;
constexpr int32_t kLimit = (1 << 16) - 1;

struct StreamError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// CompressAI's RansDecoder (rans64) over a bounded buffer.
class Rans {
 public:
  Rans(const uint8_t* data, int64_t size) : ptr_(data), end_(data + size) {
    const uint64_t lo = word();
    const uint64_t hi = word();
    x_ = lo | (hi << 32);
  }

  int32_t decode(const int32_t* cdf, int32_t size) {
    const int32_t max_value = size - 2;
    const uint32_t cum = static_cast<uint32_t>(x_ & ((1u << kPrecision) - 1));
    int32_t s = 0;
    while (s + 1 < size && static_cast<uint32_t>(cdf[s + 1]) <= cum) ++s;
    if (s + 1 >= size) throw StreamError("a CDF does not cover the decoded frequency");
    advance(static_cast<uint32_t>(cdf[s]), static_cast<uint32_t>(cdf[s + 1] - cdf[s]));
    int32_t value = s;
    if (value == max_value) {  // escape: the value follows in 4-bit chunks
      int32_t val = bits();
      int32_t n_bypass = val;
      while (val == kMaxBypass) {
        val = bits();
        n_bypass += val;
        if (n_bypass > 8) throw StreamError("an escaped value is longer than 32 bits");
      }
      if (n_bypass > 8) throw StreamError("an escaped value is longer than 32 bits");
      uint32_t raw = 0;
      for (int j = 0; j < n_bypass; ++j) raw |= static_cast<uint32_t>(bits()) << (j * kBypassBits);
      value = static_cast<int32_t>(raw >> 1);
      value = (raw & 1) ? -value - 1 : value + max_value;
    }
    return value;
  }

  // A stream ends where its encoder began: state 2^31, every word read.
  bool finished() const { return x_ == kRansL && ptr_ == end_; }

 private:
  uint64_t word() {
    if (end_ - ptr_ < 4) throw StreamError("the entropy-coded stream ran out before its symbols did");
    uint32_t w;
    std::memcpy(&w, ptr_, 4);
    ptr_ += 4;
    return w;
  }
  void advance(uint32_t start, uint32_t freq) {
    const uint64_t mask = (1ull << kPrecision) - 1;
    x_ = static_cast<uint64_t>(freq) * (x_ >> kPrecision) + (x_ & mask) - start;
    if (x_ < kRansL) x_ = (x_ << 32) | word();
  }
  int32_t bits() {
    const int32_t v = static_cast<int32_t>(x_ & ((1u << kBypassBits) - 1));
    x_ >>= kBypassBits;
    if (x_ < kRansL) x_ = (x_ << 32) | word();
    return v;
  }
  const uint8_t* ptr_;
  const uint8_t* end_;
  uint64_t x_;
};

struct Net {
  at::Tensor taps_weight, taps_bias;        // (T, C), (C)
  std::vector<at::Tensor> weights, biases;  // the 1x1x1 convs as linear layers
};

// context.entropy_parameters_at + EntropyParameters.per_element + split_mixture for E elements whose
// context patches (E, T) are gathered: (weights, means, scales), each (E, K).
std::vector<at::Tensor> entropy_parameters(const at::Tensor& patches, const at::Tensor& hyper_at, const Net& net) {
  const at::Tensor context = at::matmul(patches, net.taps_weight);
  const int64_t n = patches.size(0), ctx = context.size(1), hyp = hyper_at.size(1);
  at::Tensor x = at::empty({n, ctx + hyp}, at::kFloat);
  {  // torch.cat((context + bias, hyper), 1): one rounding per element
    const float* c = context.data_ptr<float>();
    const float* bias = net.taps_bias.data_ptr<float>();
    const auto h = hyper_at.accessor<float, 2>();
    float* o = x.data_ptr<float>();
    for (int64_t e = 0; e < n; ++e) {
      for (int64_t j = 0; j < ctx; ++j) o[e * (ctx + hyp) + j] = c[e * ctx + j] + bias[j];
      for (int64_t j = 0; j < hyp; ++j) o[e * (ctx + hyp) + ctx + j] = h[e][j];
    }
  }
  const size_t layers = net.weights.size();
  const float slope = static_cast<float>(0.01);
  for (size_t i = 0; i < layers; ++i) {
    x = at::linear(x, net.weights[i], net.biases[i]);
    if (i + 1 < layers) {  // F.leaky_relu: x > 0 ? x : x * float(0.01)
      float* v = x.data_ptr<float>();
      for (int64_t j = 0, size = x.numel(); j < size; ++j) v[j] = v[j] > 0.0f ? v[j] : v[j] * slope;
    }
  }
  std::vector<at::Tensor> parts = x.chunk(3, 1);
  at::Tensor scales = at::softplus(parts[2]);  // a new contiguous (E, K) tensor
  float* v = scales.data_ptr<float>();
  const float floor = static_cast<float>(0.11);
  for (int64_t j = 0, size = scales.numel(); j < size; ++j) v[j] = v[j] + floor;
  return {parts[0].softmax(1), parts[1], scales};
}

// context.mixture_cdfs for E elements given as three (E, K) tensors (any strides): rows of count + 2
// int32 values into `out`.
void mixture_cdfs(const at::Tensor& weights, const at::Tensor& means, const at::Tensor& scales, int32_t abs_max,
                  std::vector<int32_t>& out) {
  const int64_t count = 2 * static_cast<int64_t>(abs_max) + 1;
  const int64_t n = weights.size(0), k = weights.size(1);
  // Per (component, element): the mean shifted by abs_max and the width sqrt(2) (scale + 1e-10), each
  // operation rounded to float once, as ATen does with a float tensor and a Python scalar.
  std::vector<float> mean(k * n), width(k * n), weight(k * n);
  {
    const auto w = weights.accessor<float, 2>();
    const auto m = means.accessor<float, 2>();
    const auto sc = scales.accessor<float, 2>();
    const float lo = static_cast<float>(0.11), hi = 256.0f, tiny = static_cast<float>(1e-10);
    const float root2 = static_cast<float>(std::sqrt(2.0)), shift = static_cast<float>(abs_max);
    for (int64_t c = 0; c < k; ++c) {
      for (int64_t e = 0; e < n; ++e) {
        const float scale = std::min(std::max(sc[e][c], lo), hi);
        mean[c * n + e] = m[e][c] + shift;
        width[c * n + e] = (scale + tiny) * root2;
        weight[c * n + e] = w[e][c];
      }
    }
  }
  // above and below in one buffer: ATen's float erf is the same vectorised function for every element
  // whatever the layout (tests/test_native.py checks), so one call covers both.
  at::Tensor bounds = at::empty({2, k, n, count}, at::kFloat);
  {
    const float* m = mean.data();
    const float* w = width.data();
    float* a = bounds.data_ptr<float>();
    float* b = a + k * n * count;
    for (int64_t i = 0; i < k * n; ++i) {
      for (int64_t s = 0; s < count; ++s) {
        const float sample = static_cast<float>(s);
        a[i * count + s] = (sample + 0.5f - m[i]) / w[i];
        b[i * count + s] = (sample - 0.5f - m[i]) / w[i];
      }
    }
  }
  bounds.erf_();
  const float* a = bounds.data_ptr<float>();
  const float* b = a + k * n * count;
  const float* wt = weight.data();
  const float min_p = static_cast<float>(1.0 / kLimit);
  const float limit = static_cast<float>(kLimit);
  std::vector<float> scaled(count);
  std::vector<int32_t> cdf(count), pmf(count);
  const int64_t row = count + 2;
  out.resize(n * row);
  for (int64_t e = 0; e < n; ++e) {
    float total = 0.0f;
    for (int64_t s = 0; s < count; ++s) {
      float p = 0.0f;
      for (int64_t c = 0; c < k; ++c) {
        const int64_t at = (c * n + e) * count + s;
        const float term = (0.5f * (1.0f + a[at]) - 0.5f * (1.0f + b[at])) * wt[c * n + e];
        p = c == 0 ? term : p + term;
      }
      p = std::min(std::max(p, min_p), 1.0f);  // NaN stays NaN, as in torch.clamp
      scaled[s] = std::nearbyint(p * limit);
      total += scaled[s];  // integers below 2^24: exact in any order
    }
    double cum = 0.0;  // ATen's CPU cumsum accumulates float in double
    for (int64_t s = 0; s < count; ++s) {
      cum += static_cast<double>(scaled[s] * limit / total);
      cdf[s] = static_cast<int32_t>(static_cast<float>(cum));
    }
    int64_t zeros = 0;
    for (int64_t s = 0; s < count; ++s) {
      pmf[s] = cdf[s] - (s ? cdf[s - 1] : 0);
      zeros += pmf[s] == 0;
    }
    if (zeros) {  // zero frequencies made 1, taken from the first symbol that can spare them
      int64_t spare = 0;
      int64_t best = static_cast<int64_t>(kLimit) + 1;
      for (int64_t s = 0; s < count; ++s) {
        const int64_t v = pmf[s] > zeros ? pmf[s] : static_cast<int64_t>(kLimit) + 1;
        if (v < best) best = v, spare = s;
      }
      for (int64_t s = 0; s < count; ++s) pmf[s] += pmf[s] == 0;
      pmf[spare] -= static_cast<int32_t>(zeros);
    }
    int32_t* o = out.data() + e * row;
    o[0] = 0;
    for (int64_t s = 0; s < count; ++s) o[s + 1] = o[s] + pmf[s];
    o[row - 1] = kLimit + 1;
  }
}

// What both directions share: a latent's wavefront schedule and the entropy network's weights.
struct Walk {
  const int64_t* pos;   // padded positions of the elements, in coding order
  const int64_t* gather;
  int64_t taps, total;
  std::vector<int64_t> counts;
  at::Tensor hyper_in_order;  // (total, 2)
  Net net;
  int32_t abs_max;

  // The CDF rows (2 abs_max + 3 values each) of the step whose elements start at `start`, from the
  // values already in `vol` (the causal taps only ever read earlier steps).
  void rows(const float* vol, int64_t start, int64_t n, std::vector<int32_t>& cdfs) const {
    at::Tensor patches = at::empty({n, taps}, at::kFloat);
    float* p = patches.data_ptr<float>();
    for (int64_t e = 0; e < n; ++e)
      for (int64_t t = 0; t < taps; ++t) p[e * taps + t] = vol[pos[start + e] + gather[t]];
    std::vector<at::Tensor> mix = entropy_parameters(patches, hyper_in_order.narrow(0, start, n), net);
    mixture_cdfs(mix[0], mix[1], mix[2], abs_max, cdfs);
  }
};

Walk make_walk(int64_t abs_max, const at::Tensor& positions, const std::vector<int64_t>& counts,
               const at::Tensor& gather, const at::Tensor& hyper_in_order, const at::Tensor& taps_weight,
               const at::Tensor& taps_bias, const std::vector<at::Tensor>& weights,
               const std::vector<at::Tensor>& biases) {
  TORCH_CHECK(positions.dtype() == at::kLong && gather.dtype() == at::kLong, "positions, gather: int64");
  TORCH_CHECK(positions.is_contiguous() && gather.is_contiguous(), "positions, gather: contiguous");
  TORCH_CHECK(abs_max >= 1 && abs_max <= 65535, "abs_max out of range");
  int64_t sum = 0;
  for (const int64_t n : counts) {
    TORCH_CHECK(n > 0, "an empty wavefront step");
    sum += n;
  }
  TORCH_CHECK(sum == positions.numel() && hyper_in_order.size(0) == sum, "wavefront counts do not match");
  return Walk{positions.data_ptr<int64_t>(), gather.data_ptr<int64_t>(), gather.numel(), positions.numel(),
              counts, hyper_in_order, Net{taps_weight, taps_bias, weights, biases}, static_cast<int32_t>(abs_max)};
}

// The whole wavefront decode of one latent: returns (padded volume, symbols in coding order).
std::vector<at::Tensor> decode(const at::Tensor& stream, int64_t abs_max, const at::Tensor& positions,
                               const std::vector<int64_t>& counts, const at::Tensor& gather,
                               const at::Tensor& hyper_in_order, int64_t volume_size, const at::Tensor& taps_weight,
                               const at::Tensor& taps_bias, const std::vector<at::Tensor>& weights,
                               const std::vector<at::Tensor>& biases) {
  TORCH_CHECK(stream.dtype() == at::kByte && stream.is_contiguous(), "stream: contiguous uint8");
  at::NoGradGuard no_grad;
  const Walk walk = make_walk(abs_max, positions, counts, gather, hyper_in_order, taps_weight, taps_bias,
                              weights, biases);
  at::Tensor volume = at::zeros({volume_size}, at::kFloat);
  at::Tensor symbols = at::empty({walk.total}, at::kInt);
  float* vol = volume.data_ptr<float>();
  int32_t* sym = symbols.data_ptr<int32_t>();
  const int32_t size = static_cast<int32_t>(2 * abs_max + 3);
  const float shift = static_cast<float>(abs_max);
  Rans rans(stream.data_ptr<uint8_t>(), stream.numel());
  std::vector<int32_t> cdfs;
  int64_t start = 0;
  for (const int64_t n : walk.counts) {
    walk.rows(vol, start, n, cdfs);
    for (int64_t e = 0; e < n; ++e) {
      const int32_t value = rans.decode(cdfs.data() + e * size, size);
      sym[start + e] = value;
      vol[walk.pos[start + e]] = static_cast<float>(value) - shift;
    }
    start += n;
  }
  if (!rans.finished()) throw StreamError("the entropy-coded stream does not end where its symbols do");
  return {volume, symbols};
}

// The wavefront encode of one latent whose values fill `volume` (padded, flat) and whose symbols
// (value + abs_max) are given in coding order: the bytes of CompressAI's BufferedRansEncoder for the
// same symbols and CDFs (symbols pushed in order, then put in reverse by rans64, escapes as 4-bit chunks).
pybind11::bytes encode(const at::Tensor& volume, const at::Tensor& symbols, int64_t abs_max,
                       const at::Tensor& positions, const std::vector<int64_t>& counts, const at::Tensor& gather,
                       const at::Tensor& hyper_in_order, const at::Tensor& taps_weight, const at::Tensor& taps_bias,
                       const std::vector<at::Tensor>& weights, const std::vector<at::Tensor>& biases) {
  TORCH_CHECK(volume.dtype() == at::kFloat && volume.is_contiguous(), "volume: contiguous float32");
  TORCH_CHECK(symbols.dtype() == at::kInt && symbols.is_contiguous(), "symbols: contiguous int32");
  at::NoGradGuard no_grad;
  const Walk walk = make_walk(abs_max, positions, counts, gather, hyper_in_order, taps_weight, taps_bias,
                              weights, biases);
  TORCH_CHECK(symbols.numel() == walk.total, "one symbol per latent element");
  const float* vol = volume.data_ptr<float>();
  const int32_t* sym = symbols.data_ptr<int32_t>();
  const int32_t size = static_cast<int32_t>(2 * abs_max + 3), max_value = size - 2;
  struct Put {
    uint32_t start, freq;
    bool bypass;
  };
  std::vector<Put> puts;
  puts.reserve(walk.total);
  std::vector<int32_t> cdfs;
  int64_t start = 0;
  for (const int64_t n : walk.counts) {
    walk.rows(vol, start, n, cdfs);
    for (int64_t e = 0; e < n; ++e) {
      const int32_t* cdf = cdfs.data() + e * size;
      int32_t value = sym[start + e];
      uint32_t raw = 0;
      const bool escape = value < 0 || value >= max_value;
      if (value < 0) raw = static_cast<uint32_t>(-2 * static_cast<int64_t>(value) - 1);
      else if (value >= max_value) raw = static_cast<uint32_t>(2 * static_cast<int64_t>(value - max_value));
      if (escape) value = max_value;
      puts.push_back({static_cast<uint32_t>(cdf[value]), static_cast<uint32_t>(cdf[value + 1] - cdf[value]), false});
      if (escape) {
        int32_t chunks = 0;
        while (chunks < 8 && (raw >> (chunks * kBypassBits)) != 0) ++chunks;
        int32_t left = chunks;
        while (left >= kMaxBypass) {
          puts.push_back({static_cast<uint32_t>(kMaxBypass), 0, true});
          left -= kMaxBypass;
        }
        puts.push_back({static_cast<uint32_t>(left), 0, true});
        for (int32_t j = 0; j < chunks; ++j)
          puts.push_back({(raw >> (j * kBypassBits)) & static_cast<uint32_t>(kMaxBypass), 0, true});
      }
    }
    start += n;
  }
  // rans64, from the last symbol to the first, into 32-bit words written backwards.
  std::vector<uint32_t> out(puts.size() + 2);
  uint32_t* ptr = out.data() + out.size();
  uint64_t x = kRansL;
  for (auto it = puts.rbegin(); it != puts.rend(); ++it) {
    if (!it->bypass) {
      const uint64_t x_max = ((kRansL >> kPrecision) << 32) * it->freq;
      if (x >= x_max) *--ptr = static_cast<uint32_t>(x), x >>= 32;
      x = ((x / it->freq) << kPrecision) + (x % it->freq) + it->start;
    } else {
      const uint64_t x_max = ((kRansL >> 16) << 32) * (1u << (16 - kBypassBits));
      if (x >= x_max) *--ptr = static_cast<uint32_t>(x), x >>= 32;
      x = (x << kBypassBits) | it->start;
    }
  }
  ptr -= 2;
  ptr[0] = static_cast<uint32_t>(x);
  ptr[1] = static_cast<uint32_t>(x >> 32);
  const char* begin = reinterpret_cast<const char*>(ptr);
  return pybind11::bytes(begin, reinterpret_cast<const char*>(out.data() + out.size()) - begin);
}

// The CDF rows of one step, for tests against context.mixture_cdfs.
at::Tensor step_cdfs(const at::Tensor& weights, const at::Tensor& means, const at::Tensor& scales, int64_t abs_max) {
  std::vector<int32_t> out;
  mixture_cdfs(weights, means, scales, static_cast<int32_t>(abs_max), out);
  return at::tensor(out, at::kInt).view({weights.size(0), 2 * abs_max + 3});
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "GAACNN's wavefront coder loop (gaacnn/csrc/wavefront.cpp)";
  pybind11::register_exception<StreamError>(m, "StreamError", PyExc_ValueError);
  m.def("decode", &decode);
  m.def("encode", &encode);
  m.def("step_cdfs", &step_cdfs);
}
