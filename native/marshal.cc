#include "marshal.h"

#include <cmath>

namespace coded {

std::atomic<int64_t>& LiveHandles() {
  static std::atomic<int64_t> count{0};
  return count;
}

// A tensor handle is a plain JS object, type-tagged as ours, that napi_wrap()s a heap
// Holder. dispose() removes the wrap at once, which frees both the Holder and Node's
// finalizer record; only handles never disposed wait for the GC finalizer. (Externals
// kept those small native records alive until a GC, and in a heap without mmap for large
// blocks they pinned the holes that freed tensor buffers leave, so RSS grew without bound.)
static const napi_type_tag kTensorHandleTag = {0x6c1f0e4b3d2a9857ULL, 0xa4e3b2c1d0f9e8d7ULL};

static void Finalize(napi_env, void* data, void*) {
  Holder* h = static_cast<Holder*>(data);
  if (h->defined()) LiveHandles().fetch_sub(1, std::memory_order_relaxed);
  delete h;
}

Napi::Value Wrap(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  Napi::Object handle = Napi::Object::New(env);
  if (napi_type_tag_object(env, handle, &kTensorHandleTag) != napi_ok)
    throw Napi::Error::New(env, "native: cannot tag a tensor handle");
  Holder* h = new Holder(std::move(t));
  if (napi_wrap(env, handle, h, Finalize, nullptr, nullptr) != napi_ok) {
    delete h;
    throw Napi::Error::New(env, "native: cannot wrap a tensor handle");
  }
  LiveHandles().fetch_add(1, std::memory_order_relaxed);
  return handle;
}

static bool IsHandle(const Napi::Value& v) {
  if (!v.IsObject()) return false;
  bool tagged = false;
  return napi_check_object_type_tag(v.Env(), v, &kTensorHandleTag, &tagged) == napi_ok && tagged;
}

Holder* HolderOf(const Napi::Value& v, const char* what) {
  if (!IsHandle(v)) ThrowType(v.Env(), std::string(what) + ": expected a tensor handle");
  void* data = nullptr;
  if (napi_unwrap(v.Env(), v, &data) != napi_ok) return nullptr;  // disposed
  return static_cast<Holder*>(data);
}

void DisposeHandle(const Napi::Value& v, const char* what) {
  if (HolderOf(v, what) == nullptr) return;  // idempotent
  void* data = nullptr;
  if (napi_remove_wrap(v.Env(), v, &data) != napi_ok)
    throw Napi::Error::New(v.Env(), std::string(what) + ": cannot release the handle");
  Holder* h = static_cast<Holder*>(data);
  if (h->defined()) LiveHandles().fetch_sub(1, std::memory_order_relaxed);
  delete h;
}

Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts) {
  Napi::Array out = Napi::Array::New(env, ts.size());
  for (size_t i = 0; i < ts.size(); i++) out.Set(static_cast<uint32_t>(i), Wrap(env, ts[i]));
  return out;
}

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

at::Tensor& Unwrap(const Napi::Value& v, const char* what) {
  Holder* h = HolderOf(v, what);
  if (h == nullptr || !h->defined())
    throw Napi::Error::New(v.Env(), std::string(what) + ": tensor used after dispose()");
  return *h;
}

bool IsNullish(const Napi::Value& v) { return v.IsNull() || v.IsUndefined(); }

at::Tensor UnwrapOptional(const Napi::Value& v, const char* what) {
  if (IsNullish(v)) return at::Tensor();
  return Unwrap(v, what);
}

c10::optional<at::Tensor> OptionalTensor(const Napi::Value& v, const char* what) {
  if (IsNullish(v)) return c10::nullopt;
  return Unwrap(v, what);
}

std::vector<at::Tensor> UnwrapList(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) ThrowType(v.Env(), std::string(what) + ": expected an array of tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) out.push_back(Unwrap(a.Get(i), what));
  return out;
}

// Sizes, dims and indices: a fractional or non-finite number is an error, never truncated.
static bool IsInteger(double d) { return std::isfinite(d) && std::trunc(d) == d; }

std::vector<int64_t> Ints(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) ThrowType(v.Env(), std::string(what) + ": expected an array of integers");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber() || !IsInteger(e.As<Napi::Number>().DoubleValue()))
      ThrowType(v.Env(), std::string(what) + ": expected an array of integers");
    out[i] = e.As<Napi::Number>().Int64Value();
  }
  return out;
}

int64_t Int(const Napi::Value& v, const char* what) {
  if (!v.IsNumber() || !IsInteger(v.As<Napi::Number>().DoubleValue()))
    ThrowType(v.Env(), std::string(what) + ": expected an integer");
  return v.As<Napi::Number>().Int64Value();
}

double Num(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) ThrowType(v.Env(), std::string(what) + ": expected a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool Bool(const Napi::Value& v, const char* what) {
  if (!v.IsBoolean()) ThrowType(v.Env(), std::string(what) + ": expected a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string Str(const Napi::Value& v, const char* what) {
  if (!v.IsString()) ThrowType(v.Env(), std::string(what) + ": expected a string");
  return v.As<Napi::String>().Utf8Value();
}

// Codes: 0 float32, 1 float64, 2 int32, 3 int64, 4 uint8, 5 bool, 6 float16, 7 bfloat16
static const at::ScalarType kTypes[] = {at::kFloat, at::kDouble, at::kInt,  at::kLong,
                                        at::kByte,  at::kBool,   at::kHalf, at::kBFloat16};

at::ScalarType DType(const Napi::Value& v) {
  int64_t c = Int(v, "dtype");
  if (c < 0 || c >= static_cast<int64_t>(sizeof(kTypes) / sizeof(kTypes[0])))
    ThrowType(v.Env(), "unknown dtype code");
  return kTypes[c];
}

int DTypeCode(at::ScalarType t) {
  for (int i = 0; i < static_cast<int>(sizeof(kTypes) / sizeof(kTypes[0])); i++)
    if (kTypes[i] == t) return i;
  return -1;
}

at::Device Device(const Napi::Value& v) {
  if (IsNullish(v)) return at::Device(at::kCPU);
  return at::Device(Str(v, "device"));
}

}  // namespace coded
