// Element-wise, reduction, shape and indexing operators. Each op is addressed by an
// integer code that src/engine/native.ts names; the C++ side only dispatches.
#include "marshal.h"

#include <cmath>

namespace coded {

static Napi::Value Unary(const Napi::CallbackInfo& info) {
  int64_t op = Int(info[0], "unary op");
  at::Tensor& t = Unwrap(info[1], "unary");
  at::Tensor r;
  switch (op) {
    case 0: r = at::neg(t); break;
    case 1: r = at::exp(t); break;
    case 2: r = at::log(t); break;
    case 3: r = at::sqrt(t); break;
    case 4: r = at::rsqrt(t); break;
    case 5: r = at::abs(t); break;
    case 6: r = at::relu(t); break;
    case 7: r = at::sigmoid(t); break;
    case 8: r = at::tanh(t); break;
    case 9: r = at::square(t); break;
    case 10: r = at::sign(t); break;
    case 11: r = at::floor(t); break;
    case 12: r = at::ceil(t); break;
    case 13: r = at::round(t); break;
    case 14: r = at::reciprocal(t); break;
    case 15: r = t.detach(); break;
    case 16: r = t.contiguous(); break;
    case 17: r = t.clone(); break;
    case 18: r = at::isnan(t); break;
    case 19: r = at::logical_not(t); break;
    case 20: r = at::zeros_like(t); break;
    case 21: r = at::ones_like(t); break;
    case 22: r = at::sin(t); break;
    case 23: r = at::cos(t); break;
    case 24: r = at::log1p(t); break;
    case 25: r = at::expm1(t); break;
    case 26: r = at::isfinite(t); break;
    case 27: r = at::gelu(t); break;
    case 28: r = t; break;  // a new handle sharing the same tensor
    default: ThrowType(info.Env(), "unknown unary op code");
  }
  return Wrap(info.Env(), std::move(r));
}

static Napi::Value Binary(const Napi::CallbackInfo& info) {
  int64_t op = Int(info[0], "binary op");
  at::Tensor& a = Unwrap(info[1], "binary lhs");
  at::Tensor& b = Unwrap(info[2], "binary rhs");
  at::Tensor r;
  switch (op) {
    case 0: r = IsNullish(info[3]) ? at::add(a, b) : at::add(a, b, Num(info[3], "alpha")); break;
    case 1: r = IsNullish(info[3]) ? at::sub(a, b) : at::sub(a, b, Num(info[3], "alpha")); break;
    case 2: r = at::mul(a, b); break;
    case 3: r = at::div(a, b); break;
    case 4: r = at::pow(a, b); break;
    case 5: r = at::maximum(a, b); break;
    case 6: r = at::minimum(a, b); break;
    case 7: r = at::eq(a, b); break;
    case 8: r = at::ne(a, b); break;
    case 9: r = at::lt(a, b); break;
    case 10: r = at::le(a, b); break;
    case 11: r = at::gt(a, b); break;
    case 12: r = at::ge(a, b); break;
    case 13: r = at::matmul(a, b); break;
    case 14: r = at::remainder(a, b); break;
    case 15: r = at::logical_and(a, b); break;
    case 16: r = at::logical_or(a, b); break;
    default: ThrowType(info.Env(), "unknown binary op code");
  }
  return Wrap(info.Env(), std::move(r));
}

static Napi::Value Scalar(const Napi::CallbackInfo& info) {
  int64_t op = Int(info[0], "scalar op");
  at::Tensor& a = Unwrap(info[1], "scalar op tensor");
  double s = Num(info[2], "scalar");
  at::Tensor r;
  switch (op) {
    case 0: r = at::add(a, s); break;
    case 1: r = at::sub(a, s); break;
    case 2: r = at::mul(a, s); break;
    case 3: r = at::div(a, s); break;
    case 4: r = at::pow(a, s); break;
    case 5: r = at::eq(a, s); break;
    case 6: r = at::ne(a, s); break;
    case 7: r = at::lt(a, s); break;
    case 8: r = at::le(a, s); break;
    case 9: r = at::gt(a, s); break;
    case 10: r = at::ge(a, s); break;
    case 11: r = at::rsub(a, s); break;  // s - a
    case 12: r = at::mul(at::reciprocal(a), s); break;  // s / a
    case 13: r = at::remainder(a, s); break;
    case 14: r = at::clamp_min(a, s); break;
    case 15: r = at::clamp_max(a, s); break;
    case 16: r = at::pow(s, a); break;
    case 17: r = at::leaky_relu(a, s); break;
    default: ThrowType(info.Env(), "unknown scalar op code");
  }
  return Wrap(info.Env(), std::move(r));
}

// A JS number as the Scalar an in-place op on `t` takes: integer-valued numbers become
// integral Scalars for integral tensors (as Python ints do), so `counter.add_(1)` works on
// int64 tensors instead of failing on a float -> long cast. Floating tensors get a double.
static at::Scalar ScalarFor(const at::Tensor& t, double v) {
  if (at::isIntegralType(t.scalar_type(), /*includeBool=*/false) && std::nearbyint(v) == v && std::fabs(v) <= 9007199254740992.0)
    return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

// inplace(op, t, other|null, s1, s2): mutates t, returns nothing
static Napi::Value Inplace(const Napi::CallbackInfo& info) {
  int64_t op = Int(info[0], "inplace op");
  at::Tensor& t = Unwrap(info[1], "inplace target");
  auto other = [&]() -> at::Tensor& { return Unwrap(info[2], "inplace operand"); };
  auto s1 = [&]() { return ScalarFor(t, Num(info[3], "inplace scalar")); };
  auto s2 = [&]() { return ScalarFor(t, Num(info[4], "inplace scalar")); };
  auto d1 = [&]() { return Num(info[3], "inplace scalar"); };
  auto d2 = [&]() { return Num(info[4], "inplace scalar"); };
  switch (op) {
    case 0: t.zero_(); break;
    case 1: t.fill_(s1()); break;
    case 2: t.copy_(other()); break;
    case 3: t.add_(other(), s1()); break;
    case 4: t.add_(s1()); break;
    case 5: t.mul_(s1()); break;
    case 6: t.mul_(other()); break;
    case 7: t.div_(other()); break;
    case 8: t.sqrt_(); break;
    case 9: t.clamp_min_(s1()); break;
    case 10: t.normal_(d1(), d2()); break;
    case 11: t.uniform_(d1(), d2()); break;
    case 12: t.sub_(other(), s1()); break;
    case 13: t.div_(s1()); break;
    case 14: t.lerp_(other(), s1()); break;
    case 15: t.relu_(); break;
    case 16: t.clamp_(s1(), s2()); break;
    case 17: t.bernoulli_(d1()); break;
    case 18: t.requires_grad_(false); break;
    default: ThrowType(info.Env(), "unknown inplace op code");
  }
  return info.Env().Undefined();
}

// addcmul_(t, a, b, value) / addcdiv_(t, a, b, value)
static Napi::Value Addcmul_(const Napi::CallbackInfo& info) {
  Unwrap(info[0], "addcmul_").addcmul_(Unwrap(info[1], "addcmul_"), Unwrap(info[2], "addcmul_"), Num(info[3], "value"));
  return info.Env().Undefined();
}
static Napi::Value Addcdiv_(const Napi::CallbackInfo& info) {
  Unwrap(info[0], "addcdiv_").addcdiv_(Unwrap(info[1], "addcdiv_"), Unwrap(info[2], "addcdiv_"), Num(info[3], "value"));
  return info.Env().Undefined();
}

// reduce(op, t, dims|null, keepdim, flag)
static Napi::Value Reduce(const Napi::CallbackInfo& info) {
  int64_t op = Int(info[0], "reduce op");
  at::Tensor& t = Unwrap(info[1], "reduce");
  bool all = IsNullish(info[2]);
  std::vector<int64_t> dims = all ? std::vector<int64_t>{} : Ints(info[2], "reduce dims");
  bool keep = Bool(info[3], "keepdim");
  at::Tensor r;
  switch (op) {
    case 0: r = all ? at::sum(t) : at::sum(t, dims, keep); break;
    case 1: r = all ? at::mean(t) : at::mean(t, dims, keep); break;
    case 2: r = all ? at::amax(t, at::IntArrayRef{}, false).max() : at::amax(t, dims, keep); break;
    case 3: r = all ? at::amin(t, at::IntArrayRef{}, false).min() : at::amin(t, dims, keep); break;
    case 4: {
      if (all) {
        std::vector<int64_t> every(t.dim());
        for (int64_t i = 0; i < t.dim(); i++) every[i] = i;
        r = at::logsumexp(t, every, keep);
      } else {
        r = at::logsumexp(t, dims, keep);
      }
      break;
    }
    case 5: r = all ? at::var(t, Bool(info[4], "unbiased")) : at::var(t, dims, Bool(info[4], "unbiased"), keep); break;
    case 6: r = all ? at::std(t, Bool(info[4], "unbiased")) : at::std(t, dims, Bool(info[4], "unbiased"), keep); break;
    case 7: r = all ? at::prod(t) : (dims.size() == 1 ? at::prod(t, dims[0], keep) : throw Napi::Error::New(info.Env(), "prod: reduce one dim at a time")); break;
    case 8: r = all ? at::any(t) : (dims.size() == 1 ? at::any(t, dims[0], keep) : throw Napi::Error::New(info.Env(), "any: reduce one dim at a time")); break;
    case 9: r = all ? at::all(t) : (dims.size() == 1 ? at::all(t, dims[0], keep) : throw Napi::Error::New(info.Env(), "all: reduce one dim at a time")); break;
    default: ThrowType(info.Env(), "unknown reduce op code");
  }
  return Wrap(info.Env(), std::move(r));
}

// maxDim(t, dim, keepdim, isMin) -> [values, indices]
static Napi::Value MaxDim(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "max");
  int64_t dim = Int(info[1], "dim");
  bool keep = Bool(info[2], "keepdim");
  auto r = Bool(info[3], "isMin") ? at::min(t, dim, keep) : at::max(t, dim, keep);
  return WrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}

// argmax(t, dim|null, keepdim, isMin)
static Napi::Value Argmax(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "argmax");
  c10::optional<int64_t> dim;
  if (!IsNullish(info[1])) dim = Int(info[1], "dim");
  bool keep = Bool(info[2], "keepdim");
  return Wrap(info.Env(), Bool(info[3], "isMin") ? at::argmin(t, dim, keep) : at::argmax(t, dim, keep));
}

// topk(t, k, dim, largest, sorted) -> [values, indices]
static Napi::Value Topk(const Napi::CallbackInfo& info) {
  auto r = at::topk(Unwrap(info[0], "topk"), Int(info[1], "k"), Int(info[2], "dim"), Bool(info[3], "largest"), Bool(info[4], "sorted"));
  return WrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}

// sort(t, dim, descending) -> [values, indices]
static Napi::Value Sort(const Napi::CallbackInfo& info) {
  auto r = at::sort(Unwrap(info[0], "sort"), Int(info[1], "dim"), Bool(info[2], "descending"));
  return WrapList(info.Env(), {std::get<0>(r), std::get<1>(r)});
}

static Napi::Value Cumsum(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::cumsum(Unwrap(info[0], "cumsum"), Int(info[1], "dim")));
}

static Napi::Value Reshape(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::reshape(Unwrap(info[0], "reshape"), Ints(info[1], "reshape shape")));
}
static Napi::Value Permute(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), Unwrap(info[0], "permute").permute(Ints(info[1], "permute dims")));
}
static Napi::Value Transpose(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::transpose(Unwrap(info[0], "transpose"), Int(info[1], "dim0"), Int(info[2], "dim1")));
}
static Napi::Value Flatten(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::flatten(Unwrap(info[0], "flatten"), Int(info[1], "startDim"), Int(info[2], "endDim")));
}
static Napi::Value Squeeze(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "squeeze");
  return Wrap(info.Env(), IsNullish(info[1]) ? at::squeeze(t) : at::squeeze(t, Int(info[1], "dim")));
}
static Napi::Value Unsqueeze(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::unsqueeze(Unwrap(info[0], "unsqueeze"), Int(info[1], "dim")));
}
static Napi::Value Expand(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), Unwrap(info[0], "expand").expand(Ints(info[1], "expand shape")));
}
static Napi::Value Repeat(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), Unwrap(info[0], "repeat").repeat(Ints(info[1], "repeats")));
}
static Napi::Value Cat(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::cat(UnwrapList(info[0], "cat"), Int(info[1], "dim")));
}
static Napi::Value Stack(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::stack(UnwrapList(info[0], "stack"), Int(info[1], "dim")));
}
static Napi::Value Narrow(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::narrow(Unwrap(info[0], "narrow"), Int(info[1], "dim"), Int(info[2], "start"), Int(info[3], "length")));
}
// slice(t, dim, start, end, step)
static Napi::Value Slice(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::slice(Unwrap(info[0], "slice"), Int(info[1], "dim"), Int(info[2], "start"), Int(info[3], "end"), Int(info[4], "step")));
}
static Napi::Value Select(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::select(Unwrap(info[0], "select"), Int(info[1], "dim"), Int(info[2], "index")));
}
static Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::index_select(Unwrap(info[0], "indexSelect"), Int(info[1], "dim"), Unwrap(info[2], "indexSelect index")));
}
static Napi::Value Gather(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::gather(Unwrap(info[0], "gather"), Int(info[1], "dim"), Unwrap(info[2], "gather index")));
}
// scatter(t, dim, index, src, add)
static Napi::Value Scatter(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "scatter");
  int64_t dim = Int(info[1], "dim");
  at::Tensor& idx = Unwrap(info[2], "scatter index");
  at::Tensor& src = Unwrap(info[3], "scatter src");
  return Wrap(info.Env(), Bool(info[4], "add") ? at::scatter_add(t, dim, idx, src) : at::scatter(t, dim, idx, src));
}
// splitWithSizes(t, sizes, dim) -> list
static Napi::Value Split(const Napi::CallbackInfo& info) {
  return WrapList(info.Env(), at::split_with_sizes(Unwrap(info[0], "split"), Ints(info[1], "split sizes"), Int(info[2], "dim")));
}
static Napi::Value Flip(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::flip(Unwrap(info[0], "flip"), Ints(info[1], "flip dims")));
}
// pad(t, pads, mode, value): mode 0 constant, 1 reflect, 2 replicate
static Napi::Value Pad(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "pad");
  std::vector<int64_t> pads = Ints(info[1], "pads");
  int64_t mode = Int(info[2], "pad mode");
  switch (mode) {
    case 0: return Wrap(info.Env(), at::constant_pad_nd(t, pads, Num(info[3], "pad value")));
    case 1: return Wrap(info.Env(), pads.size() == 4 ? at::reflection_pad2d(t, pads) : at::reflection_pad1d(t, pads));
    case 2: return Wrap(info.Env(), pads.size() == 4 ? at::replication_pad2d(t, pads) : at::replication_pad1d(t, pads));
    default: ThrowType(info.Env(), "unknown pad mode");
  }
}
static Napi::Value Where(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::where(Unwrap(info[0], "where cond"), Unwrap(info[1], "where a"), Unwrap(info[2], "where b")));
}
static Napi::Value MaskedFill(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::masked_fill(Unwrap(info[0], "maskedFill"), Unwrap(info[1], "maskedFill mask"), Num(info[2], "value")));
}
static Napi::Value OneHot(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::one_hot(Unwrap(info[0], "oneHot"), Int(info[1], "numClasses")));
}

void RegisterOps(Napi::Env env, Napi::Object e) {
  Export<Unary>(env, e, "unary");
  Export<Binary>(env, e, "binary");
  Export<Scalar>(env, e, "scalar");
  Export<Inplace>(env, e, "inplace");
  Export<Addcmul_>(env, e, "addcmul_");
  Export<Addcdiv_>(env, e, "addcdiv_");
  Export<Reduce>(env, e, "reduce");
  Export<MaxDim>(env, e, "maxDim");
  Export<Argmax>(env, e, "argmax");
  Export<Topk>(env, e, "topk");
  Export<Sort>(env, e, "sort");
  Export<Cumsum>(env, e, "cumsum");
  Export<Reshape>(env, e, "reshape");
  Export<Permute>(env, e, "permute");
  Export<Transpose>(env, e, "transpose");
  Export<Flatten>(env, e, "flatten");
  Export<Squeeze>(env, e, "squeeze");
  Export<Unsqueeze>(env, e, "unsqueeze");
  Export<Expand>(env, e, "expand");
  Export<Repeat>(env, e, "repeat");
  Export<Cat>(env, e, "cat");
  Export<Stack>(env, e, "stack");
  Export<Narrow>(env, e, "narrow");
  Export<Slice>(env, e, "slice");
  Export<Select>(env, e, "select");
  Export<IndexSelect>(env, e, "indexSelect");
  Export<Gather>(env, e, "gather");
  Export<Scatter>(env, e, "scatter");
  Export<Split>(env, e, "split");
  Export<Flip>(env, e, "flip");
  Export<Pad>(env, e, "pad");
  Export<Where>(env, e, "where");
  Export<MaskedFill>(env, e, "maskedFill");
  Export<OneHot>(env, e, "oneHot");
}

}  // namespace coded
