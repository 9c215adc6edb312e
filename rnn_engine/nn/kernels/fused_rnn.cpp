// Fused CPU sequence kernels for the vanilla RNN, GRU and LSTM layers of rnn_engine, and the scans of
// its minGRU and minLSTM layers (at the end).
//
// A layer's input projections arrive precomputed, either for all steps (gi, T x B x G*H) or, for token
// input, as a (V x G*H) table read at each step's ids; so each step is one GEMM (h_{t-1} W_hh^T) plus
// one pass of gate arithmetic over a B x H tile. The backward pass walks the
// steps in reverse with one GEMM per step for dh_{t-1}, and computes dW_hh as a single GEMM over all
// steps at the end. Gate math follows torch.nn's equations and gate orders (GRU r,z,n; LSTM i,f,g,o).
//
// The GEMMs go through oneDNN (torch's mkldnn::_linear_pointwise) when torch has it, with W_hh packed
// once per sequence by the caller: at B = 64 that ran 2-3x faster than at::mm here, whose MKL takes a
// slow path on AMD CPUs. Without it they fall back to at::mm. Optional per-sequence lengths keep the
// state of a finished sequence unchanged through its padding steps, as torch's packed sequences do.
//
// bf16 mixed precision: when the caller passes W_hh in bf16, every GEMM (forward, dh, dW_hh) reads its
// operands in bf16 and accumulates in float32, and its product returns to float32 before any gate
// arithmetic, so the states, cells, saved gates and gradients all stay float32 as in the plain path.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <bit>
#include <cmath>
#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

using at::Tensor;

// exp, sigmoid and tanh written so that the compiler vectorises the gate loops (libm's expf and tanhf
// are scalar calls without -ffast-math). exp: 2^n * e^r with n = round(x / ln 2), r reduced in two
// steps (Cody-Waite) and e^r from its degree-6 Taylor polynomial, a few ulp (tests/test_fused.py holds
// the tanh built on it to 3e-7 of torch.tanh over [-60, 60]). NaN stays NaN: the clamps keep a NaN and
// the polynomial carries it.
inline float fast_exp(float x) {
  x = x > 88.0f ? 88.0f : x;
  x = x < -87.0f ? -87.0f : x;
  // adding 1.5 * 2^23 rounds to the nearest integer and leaves it in the low mantissa bits
  const float shifter = 12582912.0f;
  const float k = x * 1.44269504088896341f + shifter;
  const int32_t n = std::bit_cast<int32_t>(k) - std::bit_cast<int32_t>(shifter);
  const float nf = k - shifter;
  float r = x - nf * 0.693145751953125f;
  r = r - nf * 1.428606765330187045e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const float scale = std::bit_cast<float>((n + 127) << 23);
  return p * scale;
}

inline float sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

// tanh(x) = 1 - 2 / (e^{2x} + 1): absolute error ~1e-7, enough next to float32 GEMM rounding
inline float fast_tanh(float x) { return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f); }

// Rows of a B x H tile are independent; a second thread pays off only past this many elements per step.
constexpr int64_t kGrain = 4096;

template <typename F>
inline void for_rows(int64_t rows, int64_t width, const F& body) {
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, width));
  at::parallel_for(0, rows, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) body(b);
  });
}

// --- GEMMs ------------------------------------------------------------------------------------------

const c10::OperatorHandle* find_op(const char* name, const char* overload) {
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  return handle ? new c10::OperatorHandle(*handle) : nullptr;
}

const c10::OperatorHandle* dnnl_linear() {
  static const c10::OperatorHandle* op = find_op("mkldnn::_linear_pointwise", "");
  return op;
}

const c10::OperatorHandle* dnnl_linear_add() {
  static const c10::OperatorHandle* op = find_op("mkldnn::_linear_pointwise", "binary");
  return op;
}

Tensor call(const c10::OperatorHandle* op, std::vector<c10::IValue> stack) {
  op->callBoxed(&stack);
  return stack[0].toTensor();
}

// W_hh in bf16 asks for bf16 GEMMs; in float32 for plain ones
bool low(const Tensor& w_hh) {
  TORCH_CHECK(w_hh.scalar_type() == at::kFloat || w_hh.scalar_type() == at::kBFloat16,
              "w_hh must be float32 or bfloat16");
  return w_hh.scalar_type() == at::kBFloat16;
}

// y = x w^T (+ add), with x read in bf16 when w is (the result is float32 either way). `packed` is w
// reordered by mkldnn::_reorder_linear_weight, or undefined. A bf16 GEMM goes to oneDNN only with a
// packed weight: the caller packs one only where oneDNN runs bf16 (it refuses CPUs without AVX512BW/VL/DQ
// or AVX-NE-CONVERT), and otherwise at::mm computes the same products more slowly.
Tensor project(const Tensor& x, const Tensor& w, const std::optional<Tensor>& packed,
              const Tensor* add = nullptr) {
  if (low(w)) {
    const Tensor xl = x.to(at::kBFloat16);
    Tensor y = packed && packed->defined()
                   ? call(dnnl_linear(), {xl, *packed, c10::IValue(), "none",
                                          c10::List<std::optional<at::Scalar>>(), c10::IValue()})
                   : at::mm(xl, w.t());
    y = y.to(at::kFloat);
    return add != nullptr ? y.add_(*add) : y;
  }
  if (packed && packed->defined()) {
    if (add != nullptr) return call(dnnl_linear_add(), {x, *add, *packed, c10::IValue(), "add"});
    return call(dnnl_linear(), {x, *packed, c10::IValue(), "none",
                                c10::List<std::optional<at::Scalar>>(), c10::IValue()});
  }
  return add != nullptr ? at::addmm(*add, x, w.t()) : at::mm(x, w.t());
}

// dW = sum_t dG_t^T h_{t-1}, all steps in one GEMM: (G*H, T*B) x (T*B, H). states[t] is h_{t-1}.
// With w_hh in bf16, both operands enter it in bf16 and dW returns as float32; oneDNN runs it where the
// caller packed W_hh^T (see project).
Tensor weight_grad(const Tensor& dg, const Tensor& states, const Tensor& w_hh,
                   const std::optional<Tensor>& wt_pack) {
  const int64_t T = dg.size(0), B = dg.size(1), H = states.size(2);
  Tensor h_prev = states.narrow(0, 0, T).view({T * B, H});
  Tensor dg_flat = dg.view({T * B, dg.size(2)});
  if (low(w_hh)) {
    h_prev = h_prev.to(at::kBFloat16);
    dg_flat = dg_flat.to(at::kBFloat16);
    if (!(wt_pack && wt_pack->defined())) return at::mm(dg_flat.t(), h_prev).to(at::kFloat);
    Tensor dw_t = call(dnnl_linear(), {h_prev.t(), dg_flat.t(), c10::IValue(), "none",
                                       c10::List<std::optional<at::Scalar>>(), c10::IValue()});
    return dw_t.t().to(at::kFloat).contiguous();
  }
  if (dnnl_linear() != nullptr) {
    // as a linear layer with an unpacked weight: dW^T = h_prev^T dG, operands read through their strides
    Tensor dw_t = call(dnnl_linear(), {h_prev.t(), dg_flat.t(), c10::IValue(), "none",
                                       c10::List<std::optional<at::Scalar>>(), c10::IValue()});
    return dw_t.t().contiguous();
  }
  return at::mm(dg_flat.t(), h_prev);
}

// --- checks and masks -------------------------------------------------------------------------------

// The projected input of step t, row b: gi[t, b], or with token ids, row ids[t, b] of a (V, G*H) table
struct Inputs {
  const float* base;
  const int64_t* ids = nullptr;
  Tensor keep_ids;
  int64_t steps, batch, width;
  Inputs(const Tensor& gi, const std::optional<Tensor>& token_ids, const Tensor& h0) {
    TORCH_CHECK(gi.is_contiguous() && gi.scalar_type() == at::kFloat && gi.is_cpu(),
                "gi must be a contiguous float32 CPU tensor");
    base = gi.data_ptr<float>();
    width = gi.size(-1);
    batch = h0.size(0);
    if (token_ids && token_ids->defined()) {
      TORCH_CHECK(gi.dim() == 2 && token_ids->dim() == 2 && token_ids->size(1) == batch &&
                      token_ids->scalar_type() == at::kLong,
                  "with ids, gi must be a (V, G*H) table and ids int64 (T, B)");
      keep_ids = token_ids->contiguous();
      ids = keep_ids.data_ptr<int64_t>();
      steps = keep_ids.size(0);
      const int64_t vocab = gi.size(0);
      for (int64_t k = 0; k < keep_ids.numel(); ++k) {
        TORCH_CHECK(ids[k] >= 0 && ids[k] < vocab, "token id ", ids[k], " is outside the table of ", vocab);
      }
    } else {
      TORCH_CHECK(gi.dim() == 3 && gi.size(1) == batch, "gi must be (T, B, G*H)");
      steps = gi.size(0);
    }
    TORCH_CHECK(steps > 0, "the sequence is empty");
  }
  const float* row(int64_t t, int64_t b) const {
    const int64_t r = t * batch + b;
    return base + (ids != nullptr ? ids[r] : r) * width;
  }
};

void check_inputs(const Inputs& in, const Tensor& w_hh, const Tensor& h0, int64_t gates,
                  const std::optional<Tensor>& lengths) {
  TORCH_CHECK(w_hh.dim() == 2 && w_hh.size(0) == gates * w_hh.size(1), "w_hh must be (G*H, H)");
  low(w_hh);  // checks its dtype
  TORCH_CHECK(in.width == w_hh.size(0), "gi and w_hh disagree on G*H");
  TORCH_CHECK(h0.dim() == 2 && h0.size(1) == w_hh.size(1), "h0 must be (B, H)");
  if (lengths && lengths->defined()) {
    TORCH_CHECK(lengths->dim() == 1 && lengths->size(0) == in.batch && lengths->scalar_type() == at::kLong,
                "lengths must be int64 (B,)");
  }
}

// (T+1, B, H) with h0 in slot 0: slot t+1 holds h_t, so slots 0..T-1 are every step's h_{t-1}
Tensor states_from(const Tensor& h0, int64_t T) {
  Tensor states = at::empty({T + 1, h0.size(0), h0.size(1)}, h0.options());
  states[0].copy_(h0);
  return states;
}

// active(b) at step t: t < lengths[b], or always when there are no lengths
struct Steps {
  const int64_t* len = nullptr;
  Tensor keep;
  explicit Steps(const std::optional<Tensor>& lengths) {
    if (lengths && lengths->defined()) {
      keep = lengths->contiguous();
      len = keep.data_ptr<int64_t>();
    }
  }
  bool active(int64_t t, int64_t b) const { return len == nullptr || t < len[b]; }
  bool masked() const { return len != nullptr; }
};

// The gradient of a (V, W) input table read at token ids, summed while each row's gate gradients are
// still in cache instead of written out for a later index_add. Rows of one step may share an id, so each
// thread adds into its own copy of the table; the copies are summed at the end.
struct TableGrad {
  const int64_t* ids = nullptr;
  Tensor keep_ids, acc;
  float* base = nullptr;
  int64_t batch = 0, vocab = 0, width = 0, copies = 0;
  TableGrad(const std::optional<Tensor>& token_ids, int64_t table_rows, int64_t batch_, int64_t width_,
            const at::TensorOptions& options) {
    if (!token_ids || !token_ids->defined()) return;
    keep_ids = token_ids->contiguous();
    ids = keep_ids.data_ptr<int64_t>();
    batch = batch_, vocab = table_rows, width = width_;
    copies = at::get_num_threads();
    acc = at::zeros({copies, vocab, width}, options);
    base = acc.data_ptr<float>();
  }
  bool on() const { return ids != nullptr; }
  // the calling thread's accumulator row for the token at (t, b)
  float* row(int64_t t, int64_t b) const {
    const int64_t copy = at::get_thread_num();
    TORCH_CHECK(copy < copies, "thread ", copy, " has no copy of the table gradient");
    return base + (copy * vocab + ids[t * batch + b]) * width;
  }
  Tensor result() const { return copies == 1 ? acc[0] : acc.sum(0); }
};

inline void add_row(const float* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] += src[j];
}

// What the three backward passes share: sizes, padding, the incoming gradient, dh_t carried down the
// steps, `direct` (the part of dh_{t-1} that bypasses W_hh: a padding step's dh_t, GRU's z * dh_t) and,
// with token ids, the table gradient that takes the place of a per-step input gradient.
struct Reverse {
  const int64_t T, B, H;
  const Steps steps;
  const TableGrad table;
  const Tensor dout;
  Tensor dh, direct;
  Reverse(const Tensor& dout_in, const Tensor& states, const std::optional<Tensor>& lengths,
          const std::optional<Tensor>& ids, int64_t table_rows, int64_t gates)
      : T(states.size(0) - 1), B(states.size(1)), H(states.size(2)), steps(lengths),
        table(ids, table_rows, B, gates * H, states.options()), dout(dout_in.contiguous()),
        dh(at::zeros({B, H}, states.options())), direct(at::zeros({B, H}, states.options())) {}
  // the incoming gradient of step t's outputs
  const float* go(int64_t t) const { return dout.data_ptr<float>() + t * B * H; }
  // dh_{t-1} = dG_t W_hh, plus `direct` where the pass uses it
  void carry(const Tensor& dg_t, const Tensor& w_hh, const std::optional<Tensor>& wt_pack, bool add_direct) {
    dh = project(dg_t, w_hh.t(), wt_pack, add_direct ? &direct : nullptr);
  }
  // what the pass returns as the input gradient: the table's, or the per-step one it wrote
  Tensor input_grad(const Tensor& per_step) const { return table.on() ? table.result() : per_step; }
};

inline void copy_row(const float* __restrict src, float* __restrict dst, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] = src[j];
}

inline void zero_row(float* __restrict dst, int64_t n) {
  for (int64_t j = 0; j < n; ++j) dst[j] = 0.0f;
}

// --- one row (one sequence of the batch) of each cell's gate arithmetic ------------------------------
// Plain pointers marked __restrict so the compiler knows rows do not overlap and vectorises the loops.

void rnn_row_forward(const float* __restrict xi, const float* __restrict xh, float* __restrict h, int64_t H,
                     bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) {
      const float pre = xi[j] + xh[j];
      h[j] = pre > 0.0f ? pre : 0.0f;
    }
  } else {
    for (int64_t j = 0; j < H; ++j) h[j] = fast_tanh(xi[j] + xh[j]);
  }
}

void rnn_row_backward(const float* __restrict go, const float* __restrict dh, const float* __restrict y,
                      float* __restrict d, int64_t H, bool relu) {
  if (relu) {
    for (int64_t j = 0; j < H; ++j) d[j] = y[j] > 0.0f ? go[j] + dh[j] : 0.0f;
  } else {
    for (int64_t j = 0; j < H; ++j) d[j] = (go[j] + dh[j]) * (1.0f - y[j] * y[j]);
  }
}

void gru_row_forward(const float* __restrict xi, const float* __restrict xh, const float* __restrict bn,
                     const float* __restrict hp, float* __restrict sv, float* __restrict ho, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const float r = sigmoid(xi[j] + xh[j]);
    const float z = sigmoid(xi[H + j] + xh[H + j]);
    const float hn = xh[2 * H + j] + bn[j];
    const float n = fast_tanh(xi[2 * H + j] + r * hn);
    sv[j] = r;
    sv[H + j] = z;
    sv[2 * H + j] = n;
    sv[3 * H + j] = hn;
    ho[j] = n + z * (hp[j] - n);
  }
}

// di receives the gradient of the input projection: written, or with kAdd added to a table row
template <bool kAdd>
void gru_row_backward(const float* __restrict go, const float* __restrict dh, const float* __restrict sv,
                      const float* __restrict hp, float* __restrict di, float* __restrict dg,
                      float* __restrict direct, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const float r = sv[j], z = sv[H + j], n = sv[2 * H + j], hn = sv[3 * H + j];
    const float g = go[j] + dh[j];
    const float dn = g * (1.0f - z) * (1.0f - n * n);
    const float dz = g * (hp[j] - n) * z * (1.0f - z);
    const float dr = dn * hn * r * (1.0f - r);
    if constexpr (kAdd) {
      di[j] += dr;
      di[H + j] += dz;
      di[2 * H + j] += dn;
    } else {
      di[j] = dr;
      di[H + j] = dz;
      di[2 * H + j] = dn;
    }
    dg[j] = dr;
    dg[H + j] = dz;
    dg[2 * H + j] = dn * r;
    direct[j] = g * z;
  }
}

void lstm_row_forward(const float* __restrict xi, const float* __restrict xh, float* __restrict a,
                      const float* __restrict cp, float* __restrict co, float* __restrict ho, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const float i = sigmoid(xi[j] + xh[j]);
    const float f = sigmoid(xi[H + j] + xh[H + j]);
    const float g = fast_tanh(xi[2 * H + j] + xh[2 * H + j]);
    const float o = sigmoid(xi[3 * H + j] + xh[3 * H + j]);
    const float c = f * cp[j] + i * g;
    a[j] = i;
    a[H + j] = f;
    a[2 * H + j] = g;
    a[3 * H + j] = o;
    co[j] = c;
    ho[j] = o * fast_tanh(c);
  }
}

void lstm_row_backward(const float* __restrict go, const float* __restrict dh, const float* __restrict a,
                       const float* __restrict ct, const float* __restrict cp, float* __restrict dc,
                       float* __restrict d, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    const float i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
    const float tc = fast_tanh(ct[j]);
    const float gh = go[j] + dh[j];
    const float gc = dc[j] + gh * o * (1.0f - tc * tc);
    d[j] = gc * g * i * (1.0f - i);
    d[H + j] = gc * cp[j] * f * (1.0f - f);
    d[2 * H + j] = gc * i * (1.0f - g * g);
    d[3 * H + j] = gh * tc * o * (1.0f - o);
    dc[j] = gc * f;
  }
}

// a padding step passes the state on unchanged: its gate gradients are zero, dh_{t-1} = dh_t
void pass_row_backward(const float* __restrict go, const float* __restrict dh, float* __restrict d,
                       int64_t gates_width, float* __restrict direct, int64_t H) {
  zero_row(d, gates_width);
  for (int64_t j = 0; j < H; ++j) direct[j] = go[j] + dh[j];
}

// ---------------------------------------------------------------------------------------------------
// vanilla RNN: h_t = act(gi_t + h_{t-1} W^T), act = tanh or relu. gi carries both biases.

Tensor rnn_forward(const Tensor& gi, const std::optional<Tensor>& ids, const Tensor& w_hh,
                   const std::optional<Tensor>& w_pack, const Tensor& h0,
                   const std::optional<Tensor>& lengths, bool relu) {
  const Inputs in(gi, ids, h0);
  check_inputs(in, w_hh, h0, 1, lengths);
  const int64_t T = in.steps, B = in.batch, H = w_hh.size(1);
  const Steps steps(lengths);
  Tensor states = states_from(h0, T);
  float* st = states.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) {
    Tensor gh = project(states[t], w_hh, w_pack);
    const float* gh_p = gh.data_ptr<float>();
    const float* hp = st + t * B * H;
    float* ho = st + (t + 1) * B * H;
    for_rows(B, H, [&](int64_t b) {
      const int64_t o = b * H;
      if (steps.active(t, b)) {
        rnn_row_forward(in.row(t, b), gh_p + o, ho + o, H, relu);
      } else {
        copy_row(hp + o, ho + o, H);
      }
    });
  }
  return states;
}

// Returns (d gi, dW_hh, dh_0); with token ids the first is the gradient of the (V, H) table instead.
std::tuple<Tensor, Tensor, Tensor> rnn_backward(const Tensor& dout_in, const Tensor& states,
                                                const Tensor& w_hh, const std::optional<Tensor>& wt_pack,
                                                const std::optional<Tensor>& lengths, bool relu,
                                                const std::optional<Tensor>& ids, int64_t table_rows) {
  Reverse r(dout_in, states, lengths, ids, table_rows, 1);
  const int64_t T = r.T, B = r.B, H = r.H;
  Tensor dpre = at::empty({T, B, H}, states.options());
  const float* st = states.data_ptr<float>();
  float* d_all = dpre.data_ptr<float>();
  float* dd = r.direct.data_ptr<float>();
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* go = r.go(t);
    const float* y = st + (t + 1) * B * H;
    const float* dh_p = r.dh.data_ptr<float>();
    float* d = d_all + t * B * H;
    for_rows(B, H, [&](int64_t b) {
      const int64_t o = b * H;
      if (r.steps.active(t, b)) {
        rnn_row_backward(go + o, dh_p + o, y + o, d + o, H, relu);
        if (r.table.on()) add_row(d + o, r.table.row(t, b), H);
        if (r.steps.masked()) zero_row(dd + o, H);
      } else {
        pass_row_backward(go + o, dh_p + o, d + o, H, dd + o, H);
      }
    });
    r.carry(dpre[t], w_hh, wt_pack, r.steps.masked());
  }
  return {r.input_grad(dpre), weight_grad(dpre, states, w_hh, wt_pack), r.dh};
}

// ---------------------------------------------------------------------------------------------------
// GRU: r = s(gi_r + gh_r), z = s(gi_z + gh_z), n = tanh(gi_n + r * (gh_n + b_hn)), h = (1-z) n + z h
// gi carries b_ih and the r, z parts of b_hh. Saved per step: r, z, n, gh_n + b_hn.

std::tuple<Tensor, Tensor> gru_forward(const Tensor& gi, const std::optional<Tensor>& ids, const Tensor& w_hh,
                                       const std::optional<Tensor>& w_pack, const Tensor& b_hn,
                                       const Tensor& h0, const std::optional<Tensor>& lengths) {
  const Inputs in(gi, ids, h0);
  check_inputs(in, w_hh, h0, 3, lengths);
  const int64_t T = in.steps, B = in.batch, H = w_hh.size(1);
  const Steps steps(lengths);
  Tensor states = states_from(h0, T);
  Tensor saved = at::empty({T, B, 4 * H}, gi.options());
  Tensor bn = b_hn.contiguous();
  const float* bn_p = bn.data_ptr<float>();
  float* st = states.data_ptr<float>();
  float* sv_all = saved.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) {
    Tensor gh = project(states[t], w_hh, w_pack);
    const float* gh_p = gh.data_ptr<float>();
    const float* hp = st + t * B * H;
    float* ho = st + (t + 1) * B * H;
    float* sv = sv_all + t * B * 4 * H;
    for_rows(B, 3 * H, [&](int64_t b) {
      const int64_t o = b * H;
      if (steps.active(t, b)) {
        gru_row_forward(in.row(t, b), gh_p + 3 * o, bn_p, hp + o, sv + 4 * o, ho + o, H);
      } else {
        copy_row(hp + o, ho + o, H);
      }
    });
  }
  return {states, saved};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> gru_backward(const Tensor& dout_in, const Tensor& saved,
                                                        const Tensor& states, const Tensor& w_hh,
                                                        const std::optional<Tensor>& wt_pack,
                                                        const std::optional<Tensor>& lengths,
                                                        const std::optional<Tensor>& ids, int64_t table_rows) {
  Reverse r(dout_in, states, lengths, ids, table_rows, 3);
  const int64_t T = r.T, B = r.B, H = r.H;
  // with a table, the input gradient goes straight into its rows and dgi is never written
  Tensor dgi = r.table.on() ? Tensor() : at::empty({T, B, 3 * H}, states.options());
  Tensor dgh = at::empty({T, B, 3 * H}, states.options());
  const float* st = states.data_ptr<float>();
  const float* sv_all = saved.data_ptr<float>();
  float* di_all = r.table.on() ? nullptr : dgi.data_ptr<float>();
  float* dg_all = dgh.data_ptr<float>();
  float* dd = r.direct.data_ptr<float>();
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* go = r.go(t);
    const float* sv = sv_all + t * B * 4 * H;
    const float* hp = st + t * B * H;
    const float* dh_p = r.dh.data_ptr<float>();
    float* dg = dg_all + t * B * 3 * H;
    for_rows(B, 3 * H, [&](int64_t b) {
      const int64_t o = b * H;
      if (r.steps.active(t, b)) {
        if (r.table.on()) {
          gru_row_backward<true>(go + o, dh_p + o, sv + 4 * o, hp + o, r.table.row(t, b), dg + 3 * o, dd + o, H);
        } else {
          float* di = di_all + (t * B + b) * 3 * H;
          gru_row_backward<false>(go + o, dh_p + o, sv + 4 * o, hp + o, di, dg + 3 * o, dd + o, H);
        }
      } else {
        if (!r.table.on()) zero_row(di_all + (t * B + b) * 3 * H, 3 * H);
        pass_row_backward(go + o, dh_p + o, dg + 3 * o, 3 * H, dd + o, H);
      }
    });
    // dh_{t-1} = dh_t z + dgh_t W_hh
    r.carry(dgh[t], w_hh, wt_pack, true);
  }
  Tensor db_hn = dgh.view({T * B, 3 * H}).narrow(1, 2 * H, H).sum(0);
  return {r.input_grad(dgi), weight_grad(dgh, states, w_hh, wt_pack), db_hn, r.dh};
}

// ---------------------------------------------------------------------------------------------------
// LSTM: [i f g o] = gi + h W^T; c = s(f) c + s(i) tanh(g); h = s(o) tanh(c). gi carries both biases.
// Saved per step: the activated gates (i f g o); cells, like states, holds c_0..c_T.

std::tuple<Tensor, Tensor, Tensor> lstm_forward(const Tensor& gi, const std::optional<Tensor>& ids,
                                                const Tensor& w_hh, const std::optional<Tensor>& w_pack,
                                                const Tensor& h0, const Tensor& c0,
                                                const std::optional<Tensor>& lengths) {
  const Inputs in(gi, ids, h0);
  check_inputs(in, w_hh, h0, 4, lengths);
  TORCH_CHECK(c0.sizes() == h0.sizes(), "c0 must be shaped like h0");
  const int64_t T = in.steps, B = in.batch, H = w_hh.size(1);
  const Steps steps(lengths);
  Tensor states = states_from(h0, T);
  Tensor cells = states_from(c0, T);
  Tensor gates = at::empty({T, B, 4 * H}, gi.options());
  float* st = states.data_ptr<float>();
  float* cl = cells.data_ptr<float>();
  float* a_all = gates.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) {
    Tensor gh = project(states[t], w_hh, w_pack);
    const float* gh_p = gh.data_ptr<float>();
    const float* hp = st + t * B * H;
    const float* cp = cl + t * B * H;
    float* ho = st + (t + 1) * B * H;
    float* co = cl + (t + 1) * B * H;
    float* a = a_all + t * B * 4 * H;
    for_rows(B, 4 * H, [&](int64_t b) {
      const int64_t o = b * H;
      if (steps.active(t, b)) {
        lstm_row_forward(in.row(t, b), gh_p + 4 * o, a + 4 * o, cp + o, co + o, ho + o, H);
      } else {
        copy_row(hp + o, ho + o, H);
        copy_row(cp + o, co + o, H);
      }
    });
  }
  return {states, cells, gates};
}

std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_backward(const Tensor& dout_in, const Tensor& dc_last,
                                                         const Tensor& gates, const Tensor& cells,
                                                         const Tensor& states, const Tensor& w_hh,
                                                         const std::optional<Tensor>& wt_pack,
                                                         const std::optional<Tensor>& lengths,
                                                         const std::optional<Tensor>& ids, int64_t table_rows) {
  Reverse r(dout_in, states, lengths, ids, table_rows, 4);
  const int64_t T = r.T, B = r.B, H = r.H;
  Tensor dgates = at::empty({T, B, 4 * H}, states.options());
  Tensor dc = dc_last.contiguous().clone();
  const float* a_all = gates.data_ptr<float>();
  const float* cl = cells.data_ptr<float>();
  float* d_all = dgates.data_ptr<float>();
  float* dc_p = dc.data_ptr<float>();
  float* dd = r.direct.data_ptr<float>();
  for (int64_t t = T - 1; t >= 0; --t) {
    const float* go = r.go(t);
    const float* a = a_all + t * B * 4 * H;
    const float* ct = cl + (t + 1) * B * H;
    const float* cp = cl + t * B * H;
    const float* dh_p = r.dh.data_ptr<float>();
    float* d = d_all + t * B * 4 * H;
    for_rows(B, 4 * H, [&](int64_t b) {
      const int64_t o = b * H;
      if (r.steps.active(t, b)) {
        lstm_row_backward(go + o, dh_p + o, a + 4 * o, ct + o, cp + o, dc_p + o, d + 4 * o, H);
        if (r.table.on()) add_row(d + 4 * o, r.table.row(t, b), 4 * H);
        if (r.steps.masked()) zero_row(dd + o, H);
      } else {
        pass_row_backward(go + o, dh_p + o, d + 4 * o, 4 * H, dd + o, H);
      }
    });
    r.carry(dgates[t], w_hh, wt_pack, r.steps.masked());
  }
  return {r.input_grad(dgates), weight_grad(dgates, states, w_hh, wt_pack), r.dh, dc};
}

// The GEMMs of one layer's forward and backward and nothing else, as the kernels above issue them:
// the benchmark's ceiling for a sequence of T = dg.size(0) steps.
void gemms_only(const Tensor& states, const Tensor& dg, const Tensor& w_hh, const std::optional<Tensor>& w_pack,
                const std::optional<Tensor>& wt_pack) {
  const int64_t T = dg.size(0);
  Tensor w_t = w_hh.t();
  for (int64_t t = 0; t < T; ++t) project(states[t], w_hh, w_pack);
  for (int64_t t = T - 1; t >= 0; --t) project(dg[t], w_t, wt_pack);
  weight_grad(dg, states, w_hh, wt_pack);
}

// --- minGRU and minLSTM -------------------------------------------------------------------------------
// Their gates read the step's input only, so h_t = a_t * h_{t-1} + b_t is a linear scan: the caller makes
// every step's projection (T x B x G*H, without its bias) in one GEMM, and these walk the steps once forward and once
// backward per row of the batch, vectorised across the H units. The backward pass recomputes the gates
// from the projection instead of storing them. minGRU's projection holds (k, u), minLSTM's (f, i, u), and
// the candidate is g(u) = u + 1/2 for u >= 0, sigmoid(u) below: positive, so h stays positive
// (Feng et al. 2024). Optional lengths hold a finished sequence's state through its padding steps.

inline float positive(float x) {
  const float s = sigmoid(x);
  return x >= 0.0f ? x + 0.5f : s;
}

// The projection arrives without its bias, in float32 or (from a bf16 GEMM) in bf16: reading it as it
// comes and adding the bias here saves two passes over the largest tensor of the step.
template <typename P>
inline void min_row_forward(const P* __restrict__ xp, const float* __restrict__ bias, const float* __restrict__ prev,
                            float* __restrict__ h, int64_t H, int64_t gates) {
  if (gates == 2) {
    for (int64_t j = 0; j < H; ++j) {
      const float z = sigmoid(static_cast<float>(xp[j]) + bias[j]);
      h[j] = prev[j] + z * (positive(static_cast<float>(xp[H + j]) + bias[H + j]) - prev[j]);
    }
  } else {
    for (int64_t j = 0; j < H; ++j) {
      const float f = sigmoid(static_cast<float>(xp[j]) + bias[j]);
      const float i = sigmoid(static_cast<float>(xp[H + j]) + bias[H + j]);
      h[j] = (f * prev[j] + i * positive(static_cast<float>(xp[2 * H + j]) + bias[2 * H + j])) / (f + i);
    }
  }
}

// One step of the backward pass over a row of H units: d = dL/dh_t (from above and from step t+1); writes
// the projection's gradient dx (in the projection's dtype) and leaves a_t * d in c for step t-1.
template <typename P>
inline void min_row_backward(const P* __restrict__ xp, const float* __restrict__ bias, const float* __restrict__ gt,
                             const float* __restrict__ prev, P* __restrict__ dx, float* __restrict__ c, int64_t H,
                             int64_t gates) {
  if (gates == 2) {
    for (int64_t j = 0; j < H; ++j) {
      const float d = gt[j] + c[j];
      const float z = sigmoid(static_cast<float>(xp[j]) + bias[j]);
      const float u = static_cast<float>(xp[H + j]) + bias[H + j];
      const float su = sigmoid(u);
      const float gu = u >= 0.0f ? u + 0.5f : su, dg = u >= 0.0f ? 1.0f : su * (1.0f - su);
      dx[j] = static_cast<P>(d * (gu - prev[j]) * z * (1.0f - z));
      dx[H + j] = static_cast<P>(d * z * dg);
      c[j] = d * (1.0f - z);
    }
  } else {
    for (int64_t j = 0; j < H; ++j) {
      const float d = gt[j] + c[j];
      const float f = sigmoid(static_cast<float>(xp[j]) + bias[j]);
      const float i = sigmoid(static_cast<float>(xp[H + j]) + bias[H + j]);
      const float u = static_cast<float>(xp[2 * H + j]) + bias[2 * H + j];
      const float su = sigmoid(u);
      const float gu = u >= 0.0f ? u + 0.5f : su, dg = u >= 0.0f ? 1.0f : su * (1.0f - su);
      const float r = 1.0f / (f + i);
      const float dfp = d * prev[j], dip = d * gu;
      dx[j] = static_cast<P>((dfp - dip) * i * r * r * f * (1.0f - f));
      dx[H + j] = static_cast<P>((dip - dfp) * f * r * r * i * (1.0f - i));
      dx[2 * H + j] = static_cast<P>(d * i * r * dg);
      c[j] = d * f * r;
    }
  }
}

template <typename P>
void min_forward_rows(const P* p, const float* bias, const float* h0p, float* o, const int64_t* lp, int64_t T,
                      int64_t B, int64_t H, int64_t gates) {
  at::parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const int64_t n = lp ? lp[b] : T;
      const float* prev = h0p + b * H;
      for (int64_t t = 0; t < T; ++t) {
        float* h = o + (t * B + b) * H;
        if (t >= n) {
          std::copy(prev, prev + H, h);
        } else {
          min_row_forward(p + (t * B + b) * gates * H, bias, prev, h, H, gates);
        }
        prev = h;
      }
    }
  });
}

template <typename P>
void min_backward_rows(const float* g, const P* p, const float* bias, const float* o, const float* h0p, P* dp,
                       float* dh, const int64_t* lp, int64_t T, int64_t B, int64_t H, int64_t gates) {
  at::parallel_for(0, B, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const int64_t n = lp ? lp[b] : T;
      float* c = dh + b * H;  // carries a_{t+1} dL/dh_{t+1}; ends as dL/dh_0
      std::fill(c, c + H, 0.0f);
      for (int64_t t = T - 1; t >= 0; --t) {
        const float* gt = g + (t * B + b) * H;
        P* dx = dp + (t * B + b) * gates * H;
        if (t >= n) {  // a padding step copies h_{t-1}: its gradient passes through whole
          for (int64_t j = 0; j < H; ++j) c[j] += gt[j];
          std::fill(dx, dx + gates * H, static_cast<P>(0.0f));
          continue;
        }
        const float* prev = t > 0 ? o + ((t - 1) * B + b) * H : h0p + b * H;
        min_row_backward(p + (t * B + b) * gates * H, bias, gt, prev, dx, c, H, gates);
      }
    }
  });
}

Tensor min_forward(const Tensor& proj_in, const Tensor& bias_in, const Tensor& h0_in,
                   const std::optional<Tensor>& lengths, int64_t gates) {
  const Tensor proj = proj_in.contiguous(), bias = bias_in.contiguous(), h0 = h0_in.contiguous();
  const int64_t T = proj.size(0), B = proj.size(1), H = h0.size(1);
  TORCH_CHECK(gates == 2 || gates == 3, "min_forward: gates must be 2 (minGRU) or 3 (minLSTM)");
  TORCH_CHECK(proj.size(2) == gates * H && h0.size(0) == B && bias.numel() == gates * H,
              "min_forward: projection, bias and state sizes differ");
  TORCH_CHECK(bias.scalar_type() == at::kFloat && h0.scalar_type() == at::kFloat,
              "min_forward: bias and state are float32");
  Tensor out = at::empty({T, B, H}, h0.options());
  const Tensor len = lengths ? lengths->to(at::kLong).contiguous() : Tensor();
  const int64_t* lp = lengths ? len.data_ptr<int64_t>() : nullptr;
  if (proj.scalar_type() == at::kBFloat16) {
    min_forward_rows(proj.data_ptr<at::BFloat16>(), bias.data_ptr<float>(), h0.data_ptr<float>(),
                     out.data_ptr<float>(), lp, T, B, H, gates);
  } else {
    TORCH_CHECK(proj.scalar_type() == at::kFloat, "min_forward: the projection is float32 or bf16");
    min_forward_rows(proj.data_ptr<float>(), bias.data_ptr<float>(), h0.data_ptr<float>(), out.data_ptr<float>(),
                     lp, T, B, H, gates);
  }
  return out;
}

std::tuple<Tensor, Tensor> min_backward(const Tensor& dout_in, const Tensor& proj_in, const Tensor& bias_in,
                                        const Tensor& out_in, const Tensor& h0_in, const std::optional<Tensor>& lengths,
                                        int64_t gates) {
  const Tensor dout = dout_in.contiguous().to(at::kFloat), proj = proj_in.contiguous(), out = out_in.contiguous();
  const Tensor bias = bias_in.contiguous(), h0 = h0_in.contiguous();
  const int64_t T = proj.size(0), B = proj.size(1), H = h0.size(1);
  Tensor dproj = at::empty_like(proj);
  Tensor dh0 = at::empty_like(h0);
  const Tensor len = lengths ? lengths->to(at::kLong).contiguous() : Tensor();
  const int64_t* lp = lengths ? len.data_ptr<int64_t>() : nullptr;
  if (proj.scalar_type() == at::kBFloat16) {
    min_backward_rows(dout.data_ptr<float>(), proj.data_ptr<at::BFloat16>(), bias.data_ptr<float>(),
                      out.data_ptr<float>(), h0.data_ptr<float>(), dproj.data_ptr<at::BFloat16>(),
                      dh0.data_ptr<float>(), lp, T, B, H, gates);
  } else {
    min_backward_rows(dout.data_ptr<float>(), proj.data_ptr<float>(), bias.data_ptr<float>(), out.data_ptr<float>(),
                      h0.data_ptr<float>(), dproj.data_ptr<float>(), dh0.data_ptr<float>(), lp, T, B, H, gates);
  }
  return {dproj, dh0};
}

bool has_dnnl() { return dnnl_linear() != nullptr && dnnl_linear_add() != nullptr; }

}  // namespace

TORCH_LIBRARY(rnn_workbench, m) {
  m.def("has_dnnl() -> bool", &has_dnnl);
  m.def("gemms_only(Tensor states, Tensor dg, Tensor w_hh, Tensor? w_pack, Tensor? wt_pack) -> ()", &gemms_only);
  m.def("rnn_forward(Tensor gi, Tensor? ids, Tensor w_hh, Tensor? w_pack, Tensor h0, Tensor? lengths, "
        "bool relu) -> Tensor",
        &rnn_forward);
  m.def("rnn_backward(Tensor dout, Tensor states, Tensor w_hh, Tensor? wt_pack, Tensor? lengths, bool relu, "
        "Tensor? ids, int table_rows) -> (Tensor, Tensor, Tensor)",
        &rnn_backward);
  m.def("gru_forward(Tensor gi, Tensor? ids, Tensor w_hh, Tensor? w_pack, Tensor b_hn, Tensor h0, "
        "Tensor? lengths) -> (Tensor, Tensor)",
        &gru_forward);
  m.def("gru_backward(Tensor dout, Tensor saved, Tensor states, Tensor w_hh, Tensor? wt_pack, "
        "Tensor? lengths, Tensor? ids, int table_rows) -> (Tensor, Tensor, Tensor, Tensor)",
        &gru_backward);
  m.def("lstm_forward(Tensor gi, Tensor? ids, Tensor w_hh, Tensor? w_pack, Tensor h0, Tensor c0, "
        "Tensor? lengths) -> (Tensor, Tensor, Tensor)",
        &lstm_forward);
  m.def("lstm_backward(Tensor dout, Tensor dc_last, Tensor gates, Tensor cells, Tensor states, Tensor w_hh, "
        "Tensor? wt_pack, Tensor? lengths, Tensor? ids, int table_rows) -> (Tensor, Tensor, Tensor, Tensor)",
        &lstm_backward);
  m.def("min_forward(Tensor proj, Tensor bias, Tensor h0, Tensor? lengths, int gates) -> Tensor", &min_forward);
  m.def("min_backward(Tensor dout, Tensor proj, Tensor bias, Tensor out, Tensor h0, Tensor? lengths, int gates) "
        "-> (Tensor, Tensor)",
        &min_backward);
}
