// Tensor handles: creation from and copies to typed arrays, metadata, disposal,
// factories and process-wide runtime settings.
#include "marshal.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstring>

namespace coded {

static at::ScalarType SourceType(const Napi::TypedArray& a) {
  switch (a.TypedArrayType()) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_bigint64_array: return at::kLong;
    case napi_uint8_array: return at::kByte;
    case napi_int8_array: return at::kChar;
    default:
      ThrowType(a.Env(),
                "fromArray: supported typed arrays are Float32Array, Float64Array, Int32Array, "
                "BigInt64Array, Uint8Array and Int8Array");
  }
}

// fromArray(typedArray, shape, dtype, device): the data are always copied (never shared with the
// JS buffer, which the GC may move or free), converting from the array's own type to dtype
static Napi::Value FromArray(const Napi::CallbackInfo& info) {
  if (!info[0].IsTypedArray()) ThrowType(info.Env(), "fromArray: expected a typed array");
  Napi::TypedArray a = info[0].As<Napi::TypedArray>();
  std::vector<int64_t> shape = Ints(info[1], "fromArray shape");
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) throw Napi::RangeError::New(info.Env(), "fromArray: negative dimension in shape");
    n *= d;
  }
  if (n != static_cast<int64_t>(a.ElementLength()))
    throw Napi::RangeError::New(info.Env(), "fromArray: shape [" + c10::Join(", ", shape) +
                                                "] holds " + std::to_string(n) + " elements but the array has " +
                                                std::to_string(a.ElementLength()));
  at::ScalarType src = SourceType(a);
  at::ScalarType dst = DType(info[2]);
  at::Device dev = Device(info[3]);
  uint8_t* data = static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  at::Tensor view = at::from_blob(data, shape, at::TensorOptions().dtype(src));
  return Wrap(info.Env(), view.to(dev, dst, /*non_blocking=*/false, /*copy=*/true));
}

// toArray(t) -> a typed array holding a copy of the data (row-major). JS has no float16,
// bfloat16 or bool arrays: float16/bfloat16 come back widened to Float32Array, bool as
// Uint8Array (0/1)
static Napi::Value ToArray(const Napi::CallbackInfo& info) {
  at::Tensor t = Unwrap(info[0], "toArray").detach();
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  if (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16) t = t.to(at::kFloat);
  if (t.scalar_type() == at::kBool || t.scalar_type() == at::kChar) t = t.to(at::kByte);
  t = t.contiguous();
  size_t n = static_cast<size_t>(t.numel());
  Napi::Env env = info.Env();
  switch (t.scalar_type()) {
    case at::kFloat: {
      auto out = Napi::Float32Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n * 4);
      return out;
    }
    case at::kDouble: {
      auto out = Napi::Float64Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n * 8);
      return out;
    }
    case at::kInt: {
      auto out = Napi::Int32Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n * 4);
      return out;
    }
    case at::kLong: {
      auto buf = Napi::ArrayBuffer::New(env, n * 8);
      if (n) std::memcpy(buf.Data(), t.data_ptr(), n * 8);
      napi_value arr;
      napi_create_typedarray(env, napi_bigint64_array, n, buf, 0, &arr);
      return Napi::Value(env, arr);
    }
    case at::kByte: {
      auto out = Napi::Uint8Array::New(env, n);
      if (n) std::memcpy(out.Data(), t.data_ptr(), n);
      return out;
    }
    default:
      throw Napi::Error::New(env, std::string("toArray: unsupported dtype ") + c10::toString(t.scalar_type()));
  }
}

static Napi::Value Shape(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "shape");
  auto sizes = t.sizes();
  Napi::Array out = Napi::Array::New(info.Env(), sizes.size());
  for (size_t i = 0; i < sizes.size(); i++) out.Set(static_cast<uint32_t>(i), Napi::Number::New(info.Env(), static_cast<double>(sizes[i])));
  return out;
}

static Napi::Value DTypeOf(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), DTypeCode(Unwrap(info[0], "dtype").scalar_type()));
}

static Napi::Value DeviceOf(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), Unwrap(info[0], "device").device().str());
}

static Napi::Value Numel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Unwrap(info[0], "numel").numel()));
}

// item(t) -> a JS number (a double: int64 values beyond 2^53 lose precision)
static Napi::Value Item(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Unwrap(info[0], "item").item<double>());
}

static Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  Holder* h = HolderOf(info[0], "isDisposed");
  return Napi::Boolean::New(info.Env(), h == nullptr || !h->defined());
}

static Napi::Value Dispose(const Napi::CallbackInfo& info) {
  DisposeHandle(info[0], "dispose");
  return info.Env().Undefined();
}

static Napi::Value LiveHandleCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(LiveHandles().load()));
}

static at::TensorOptions Opts(const Napi::Value& dtype, const Napi::Value& device) {
  return at::TensorOptions().dtype(DType(dtype)).device(Device(device));
}

// factories: (shape, dtype, device)
static Napi::Value Zeros(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::zeros(Ints(info[0], "zeros shape"), Opts(info[1], info[2])));
}
static Napi::Value Ones(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::ones(Ints(info[0], "ones shape"), Opts(info[1], info[2])));
}
static Napi::Value Empty(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::empty(Ints(info[0], "empty shape"), Opts(info[1], info[2])));
}
// full(shape, value, dtype, device)
static Napi::Value Full(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::full(Ints(info[0], "full shape"), Num(info[1], "full value"), Opts(info[2], info[3])));
}
// arange(start, end, step, dtype, device)
static Napi::Value Arange(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::arange(Num(info[0], "start"), Num(info[1], "end"), Num(info[2], "step"), Opts(info[3], info[4])));
}
// linspace(start, end, steps, dtype, device)
static Napi::Value Linspace(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::linspace(Num(info[0], "start"), Num(info[1], "end"), Int(info[2], "steps"), Opts(info[3], info[4])));
}
// eye(n, dtype, device)
static Napi::Value Eye(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::eye(Int(info[0], "n"), Opts(info[1], info[2])));
}
static Napi::Value Randn(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::randn(Ints(info[0], "randn shape"), Opts(info[1], info[2])));
}
static Napi::Value Rand(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::rand(Ints(info[0], "rand shape"), Opts(info[1], info[2])));
}
// randint(low, high, shape, dtype, device)
static Napi::Value Randint(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::randint(Int(info[0], "low"), Int(info[1], "high"), Ints(info[2], "randint shape"), Opts(info[3], info[4])));
}
// randperm(n, device)
static Napi::Value Randperm(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::randperm(Int(info[0], "n"), at::TensorOptions().dtype(at::kLong).device(Device(info[1]))));
}

// to(t, dtype|null, device|null, copy)
static Napi::Value To(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "to");
  at::ScalarType dt = IsNullish(info[1]) ? t.scalar_type() : DType(info[1]);
  at::Device dev = IsNullish(info[2]) ? t.device() : Device(info[2]);
  return Wrap(info.Env(), t.to(dev, dt, /*non_blocking=*/false, Bool(info[3], "copy")));
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = Int(info[0], "threads");
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads: need at least 1 thread");
  at::set_num_threads(static_cast<int>(n));
  return info.Env().Undefined();
}
static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}
static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  at::manual_seed(static_cast<uint64_t>(Int(info[0], "seed")));
  return info.Env().Undefined();
}
// setDeterministic(on): libtorch's deterministic algorithms (ops without a deterministic
// implementation throw instead of running), and cuDNN's deterministic, non-benchmarking mode.
static Napi::Value SetDeterministic(const Napi::CallbackInfo& info) {
  bool on = Bool(info[0], "on");
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(on);
  if (on) at::globalContext().setBenchmarkCuDNN(false);
  return info.Env().Undefined();
}
static Napi::Value GetDeterministic(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::globalContext().deterministicAlgorithms());
}
static Napi::Value CudaAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), torch::cuda::is_available());
}
static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
}
static Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  if (torch::cuda::is_available()) torch::cuda::synchronize();
  return info.Env().Undefined();
}
static Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}

void RegisterTensorBasics(Napi::Env env, Napi::Object e) {
  Export<FromArray>(env, e, "fromArray");
  Export<ToArray>(env, e, "toArray");
  Export<Shape>(env, e, "shape");
  Export<DTypeOf>(env, e, "dtype");
  Export<DeviceOf>(env, e, "device");
  Export<Numel>(env, e, "numel");
  Export<Item>(env, e, "item");
  Export<IsDisposed>(env, e, "isDisposed");
  Export<Dispose>(env, e, "dispose");
  Export<LiveHandleCount>(env, e, "liveHandles");
  Export<Zeros>(env, e, "zeros");
  Export<Ones>(env, e, "ones");
  Export<Empty>(env, e, "empty");
  Export<Full>(env, e, "full");
  Export<Arange>(env, e, "arange");
  Export<Linspace>(env, e, "linspace");
  Export<Eye>(env, e, "eye");
  Export<Randn>(env, e, "randn");
  Export<Rand>(env, e, "rand");
  Export<Randint>(env, e, "randint");
  Export<Randperm>(env, e, "randperm");
  Export<To>(env, e, "to");
  Export<SetNumThreads>(env, e, "setNumThreads");
  Export<GetNumThreads>(env, e, "getNumThreads");
  Export<ManualSeed>(env, e, "manualSeed");
  Export<SetDeterministic>(env, e, "setDeterministic");
  Export<GetDeterministic>(env, e, "getDeterministic");
  Export<CudaAvailable>(env, e, "cudaAvailable");
  Export<CudaDeviceCount>(env, e, "cudaDeviceCount");
  Export<CudaSynchronize>(env, e, "cudaSynchronize");
  Export<Version>(env, e, "version");
}

}  // namespace coded
