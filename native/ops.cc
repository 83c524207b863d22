// Element-wise, reduction, shape and indexing operators, exported by name (see the op tables
// below); src/engine/native.ts types them and the rest of src/engine names them.
#include "marshal.h"

#include <cmath>

namespace coded {

// The element-wise, in-place and reduction ops are exported by name, one N-API function
// each, grouped in objects: addon.unary.neg(t), addon.binary.add(a, b, alpha),
// addon.scalar.rsub(t, s), addon.inplace.fill(t, v), addon.reduce.sum(t, dims, keepdim, flag).
// Each table below is the single list of its group's names; src/engine/native.ts types the
// same names and test/engine/native-ops.test.ts checks that the two agree both ways.
// A name that is missing on either side fails loudly (no integer codes to drift apart).

// X(name, expression of the input tensor t)
#define CODED_UNARY_OPS(X)                                   \
  X(neg, at::neg(t))                                         \
  X(exp, at::exp(t))                                         \
  X(log, at::log(t))                                         \
  X(sqrt, at::sqrt(t))                                       \
  X(rsqrt, at::rsqrt(t))                                     \
  X(abs, at::abs(t))                                         \
  X(relu, at::relu(t))                                       \
  X(sigmoid, at::sigmoid(t))                                 \
  X(tanh, at::tanh(t))                                       \
  X(square, at::square(t))                                   \
  X(sign, at::sign(t))                                       \
  X(floor, at::floor(t))                                     \
  X(ceil, at::ceil(t))                                       \
  X(round, at::round(t))                                     \
  X(reciprocal, at::reciprocal(t))                           \
  X(detach, t.detach())                                      \
  X(contiguous, t.contiguous())                              \
  X(clone, t.clone())                                        \
  X(isnan, at::isnan(t))                                     \
  X(logicalNot, at::logical_not(t))                          \
  X(zerosLike, at::zeros_like(t))                            \
  X(onesLike, at::ones_like(t))                              \
  X(sin, at::sin(t))                                         \
  X(cos, at::cos(t))                                         \
  X(log1p, at::log1p(t))                                     \
  X(expm1, at::expm1(t))                                     \
  X(isfinite, at::isfinite(t))                               \
  X(gelu, at::gelu(t))                                       \
  /* a second handle sharing the same tensor (storage and autograd identity) */ \
  X(share, at::Tensor(t))

// X(name, expression of tensors a and b); add and sub take an optional alpha (a + alpha * b)
#define CODED_BINARY_OPS(X)                                                          \
  X(add, IsNullish(info[2]) ? at::add(a, b) : at::add(a, b, Num(info[2], "alpha")))  \
  X(sub, IsNullish(info[2]) ? at::sub(a, b) : at::sub(a, b, Num(info[2], "alpha")))  \
  X(mul, at::mul(a, b))                                                              \
  X(div, at::div(a, b))                                                              \
  X(pow, at::pow(a, b))                                                              \
  X(maximum, at::maximum(a, b))                                                      \
  X(minimum, at::minimum(a, b))                                                      \
  X(eq, at::eq(a, b))                                                                \
  X(ne, at::ne(a, b))                                                                \
  X(lt, at::lt(a, b))                                                                \
  X(le, at::le(a, b))                                                                \
  X(gt, at::gt(a, b))                                                                \
  X(ge, at::ge(a, b))                                                                \
  X(matmul, at::matmul(a, b))                                                        \
  X(remainder, at::remainder(a, b))                                                  \
  X(logicalAnd, at::logical_and(a, b))                                               \
  X(logicalOr, at::logical_or(a, b))

// X(name, expression of tensor a and the JS number s, a double Scalar)
#define CODED_SCALAR_OPS(X)                                  \
  X(add, at::add(a, s))                                      \
  X(sub, at::sub(a, s))                                      \
  X(mul, at::mul(a, s))                                      \
  X(div, at::div(a, s))                                      \
  X(pow, at::pow(a, s))                                      \
  X(eq, at::eq(a, s))                                        \
  X(ne, at::ne(a, s))                                        \
  X(lt, at::lt(a, s))                                        \
  X(le, at::le(a, s))                                        \
  X(gt, at::gt(a, s))                                        \
  X(ge, at::ge(a, s))                                        \
  X(rsub, at::rsub(a, s)) /* s - a */                        \
  X(rdiv, at::mul(at::reciprocal(a), s)) /* s / a */         \
  X(remainder, at::remainder(a, s))                          \
  X(clampMin, at::clamp_min(a, s))                           \
  X(clampMax, at::clamp_max(a, s))                           \
  X(leakyRelu, at::leaky_relu(a, s))

// X(name, statement mutating t): T(i) is argument i as a tensor, S(i) as a Scalar fitted to t
// (ScalarFor below), D(i) as a double. Arguments count from 0 = t.
#define CODED_INPLACE_OPS(X)                                 \
  X(zero, t.zero_())                                         \
  X(fill, t.fill_(S(1)))                                     \
  X(copy, t.copy_(T(1)))                                     \
  X(add, t.add_(T(1), S(2))) /* t += alpha * other */        \
  X(addScalar, t.add_(S(1)))                                 \
  X(mulScalar, t.mul_(S(1)))                                 \
  X(mul, t.mul_(T(1)))                                       \
  X(div, t.div_(T(1)))                                       \
  X(sqrt, t.sqrt_())                                         \
  X(clampMin, t.clamp_min_(S(1)))                            \
  X(normal, t.normal_(D(1), D(2)))                           \
  X(uniform, t.uniform_(D(1), D(2)))                         \
  X(sub, t.sub_(T(1), S(2))) /* t -= alpha * other */        \
  X(divScalar, t.div_(S(1)))                                 \
  X(lerp, t.lerp_(T(1), S(2)))                               \
  X(relu, t.relu_())                                         \
  X(clamp, t.clamp_(S(1), S(2)))                             \
  X(bernoulli, t.bernoulli_(D(1)))                           \
  X(addcmul, t.addcmul_(T(1), T(2), D(3))) /* t += v * a * b */ \
  X(addcdiv, t.addcdiv_(T(1), T(2), D(3))) /* t += v * a / b */

// X(name, expression of t over all elements, expression over `dims` keeping them if `keep`);
// `flag` is var/std's `unbiased`. prod, any and all reduce one dim at a time (libtorch's
// overloads take one dim).
#define CODED_REDUCE_OPS(X)                                                                   \
  X(sum, at::sum(t), at::sum(t, dims, keep))                                                  \
  X(mean, at::mean(t), at::mean(t, dims, keep))                                               \
  X(amax, at::amax(t, at::IntArrayRef{}, false).max(), at::amax(t, dims, keep))               \
  X(amin, at::amin(t, at::IntArrayRef{}, false).min(), at::amin(t, dims, keep))               \
  X(logsumexp, at::logsumexp(t, AllDims(t), keep), at::logsumexp(t, dims, keep))              \
  X(var, at::var(t, flag()), at::var(t, dims, flag(), keep))                                  \
  X(std, at::std(t, flag()), at::std(t, dims, flag(), keep))                                  \
  X(prod, at::prod(t), at::prod(t, OneDim(info, dims, "prod"), keep))                         \
  X(any, at::any(t), at::any(t, OneDim(info, dims, "any"), keep))                             \
  X(all, at::all(t), at::all(t, OneDim(info, dims, "all"), keep))

// A JS number as the Scalar an in-place op on `t` takes: integer-valued numbers become
// integral Scalars for integral tensors (as Python ints do), so `counter.add_(1)` works on
// int64 tensors instead of failing on a float -> long cast. Floating tensors get a double.
static at::Scalar ScalarFor(const at::Tensor& t, double v) {
  if (at::isIntegralType(t.scalar_type(), /*includeBool=*/false) && std::nearbyint(v) == v && std::fabs(v) <= 9007199254740992.0)
    return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

static std::vector<int64_t> AllDims(const at::Tensor& t) {
  std::vector<int64_t> every(t.dim());
  for (int64_t i = 0; i < t.dim(); i++) every[i] = i;
  return every;
}

static int64_t OneDim(const Napi::CallbackInfo& info, const std::vector<int64_t>& dims, const char* name) {
  if (dims.size() != 1) throw Napi::Error::New(info.Env(), std::string(name) + ": reduce one dim at a time");
  return dims[0];
}

// unary.NAME(t) -> tensor
#define CODED_DEFINE_UNARY(name, expr)                                  \
  static Napi::Value Unary_##name(const Napi::CallbackInfo& info) {     \
    const at::Tensor& t = Unwrap(info[0], "unary " #name);              \
    return Wrap(info.Env(), expr);                                      \
  }
CODED_UNARY_OPS(CODED_DEFINE_UNARY)

// binary.NAME(a, b[, alpha]) -> tensor
#define CODED_DEFINE_BINARY(name, expr)                                 \
  static Napi::Value Binary_##name(const Napi::CallbackInfo& info) {    \
    const at::Tensor& a = Unwrap(info[0], "binary " #name " lhs");      \
    const at::Tensor& b = Unwrap(info[1], "binary " #name " rhs");      \
    return Wrap(info.Env(), expr);                                      \
  }
CODED_BINARY_OPS(CODED_DEFINE_BINARY)

// scalar.NAME(a, s) -> tensor
#define CODED_DEFINE_SCALAR(name, expr)                                 \
  static Napi::Value Scalar_##name(const Napi::CallbackInfo& info) {    \
    const at::Tensor& a = Unwrap(info[0], "scalar " #name);             \
    double s = Num(info[1], "scalar " #name " operand");                \
    return Wrap(info.Env(), expr);                                      \
  }
CODED_SCALAR_OPS(CODED_DEFINE_SCALAR)

// inplace.NAME(t, ...) mutates t, returns nothing
#define T(i) Unwrap(info[i], "inplace operand")
#define S(i) ScalarFor(t, Num(info[i], "inplace scalar"))
#define D(i) Num(info[i], "inplace scalar")
#define CODED_DEFINE_INPLACE(name, stmt)                                \
  static Napi::Value Inplace_##name(const Napi::CallbackInfo& info) {   \
    at::Tensor& t = Unwrap(info[0], "inplace " #name);                  \
    stmt;                                                               \
    return info.Env().Undefined();                                      \
  }
CODED_INPLACE_OPS(CODED_DEFINE_INPLACE)
#undef T
#undef S
#undef D

// reduce.NAME(t, dims|null, keepdim, flag) -> tensor; dims null reduces every element
#define CODED_DEFINE_REDUCE(name, all_expr, dims_expr)                  \
  static Napi::Value Reduce_##name(const Napi::CallbackInfo& info) {    \
    const at::Tensor& t = Unwrap(info[0], "reduce " #name);             \
    bool keep = Bool(info[2], "keepdim");                               \
    auto flag = [&]() { return Bool(info[3], "unbiased"); };            \
    (void)flag;                                                         \
    if (IsNullish(info[1])) return Wrap(info.Env(), all_expr);          \
    std::vector<int64_t> dims = Ints(info[1], "reduce dims");           \
    return Wrap(info.Env(), dims_expr);                                 \
  }
CODED_REDUCE_OPS(CODED_DEFINE_REDUCE)

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
// pad(t, pads, mode, value): mode 'constant' (fills with value), 'reflect' or 'replicate';
// reflect/replicate pad 2 dims when given 4 pads, else the last dim
static Napi::Value Pad(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "pad");
  std::vector<int64_t> pads = Ints(info[1], "pads");
  std::string mode = Str(info[2], "pad mode");
  if (mode == "constant") return Wrap(info.Env(), at::constant_pad_nd(t, pads, Num(info[3], "pad value")));
  if (mode == "reflect") return Wrap(info.Env(), pads.size() == 4 ? at::reflection_pad2d(t, pads) : at::reflection_pad1d(t, pads));
  if (mode == "replicate") return Wrap(info.Env(), pads.size() == 4 ? at::replication_pad2d(t, pads) : at::replication_pad1d(t, pads));
  ThrowType(info.Env(), "unknown pad mode '" + mode + "'");
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
  Napi::Object unary = Napi::Object::New(env), binary = Napi::Object::New(env), scalar = Napi::Object::New(env),
               inplace = Napi::Object::New(env), reduce = Napi::Object::New(env);
#define CODED_EXPORT_UNARY(name, ...) Export<Unary_##name>(env, unary, #name);
#define CODED_EXPORT_BINARY(name, ...) Export<Binary_##name>(env, binary, #name);
#define CODED_EXPORT_SCALAR(name, ...) Export<Scalar_##name>(env, scalar, #name);
#define CODED_EXPORT_INPLACE(name, ...) Export<Inplace_##name>(env, inplace, #name);
#define CODED_EXPORT_REDUCE(name, ...) Export<Reduce_##name>(env, reduce, #name);
  CODED_UNARY_OPS(CODED_EXPORT_UNARY)
  CODED_BINARY_OPS(CODED_EXPORT_BINARY)
  CODED_SCALAR_OPS(CODED_EXPORT_SCALAR)
  CODED_INPLACE_OPS(CODED_EXPORT_INPLACE)
  CODED_REDUCE_OPS(CODED_EXPORT_REDUCE)
  e.Set("unary", unary);
  e.Set("binary", binary);
  e.Set("scalar", scalar);
  e.Set("inplace", inplace);
  e.Set("reduce", reduce);
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
