// TorchScript modules (libtorch's JIT): load, forward, parameters, train/eval, clone, save.
// Marshalling only; file checks, error wording and shapes live in src/models/torchscript.ts.
// Named exports (jit*), not entries of the integer op table in ops.cc.
// Builds against libtorch 1.13 (Debian) and 2.x: only APIs present in both are used.
#include "marshal.h"

#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>

#include <memory>

namespace coded {

// A JS module handle is a type-tagged object wrapping a heap JitHolder; jitDispose frees it
// at once, a GC finalizer is the backstop.
struct JitHolder {
  std::unique_ptr<torch::jit::Module> module;
};

static const napi_type_tag kJitHandleTag = {0x3b9e4d2c1a0f8e71ULL, 0x5d4c3b2a19087f6eULL};

static void FinalizeJit(napi_env, void* data, void*) { delete static_cast<JitHolder*>(data); }

static Napi::Value WrapJit(Napi::Env env, torch::jit::Module m) {
  Napi::Object handle = Napi::Object::New(env);
  if (napi_type_tag_object(env, handle, &kJitHandleTag) != napi_ok) throw Napi::Error::New(env, "native: cannot tag a TorchScript handle");
  auto* h = new JitHolder{std::make_unique<torch::jit::Module>(std::move(m))};
  if (napi_wrap(env, handle, h, FinalizeJit, nullptr, nullptr) != napi_ok) {
    delete h;
    throw Napi::Error::New(env, "native: cannot wrap a TorchScript handle");
  }
  return handle;
}

static torch::jit::Module& UnwrapJit(const Napi::Value& v, const char* what) {
  bool tagged = false;
  if (!v.IsObject() || napi_check_object_type_tag(v.Env(), v, &kJitHandleTag, &tagged) != napi_ok || !tagged)
    ThrowType(v.Env(), std::string(what) + ": expected a TorchScript module handle");
  void* data = nullptr;
  if (napi_unwrap(v.Env(), v, &data) != napi_ok || data == nullptr || !static_cast<JitHolder*>(data)->module)
    throw Napi::Error::New(v.Env(), std::string(what) + ": TorchScript module used after dispose()");
  return *static_cast<JitHolder*>(data)->module;
}

// jitLoad(path, device|null) -> module handle
static Napi::Value JitLoad(const Napi::CallbackInfo& info) {
  std::string path = Str(info[0], "jitLoad path");
  c10::optional<at::Device> device;
  if (!IsNullish(info[1])) device = Device(info[1]);
  return WrapJit(info.Env(), torch::jit::load(path, device));
}

// jitDispose(m): free the module now (idempotent)
static Napi::Value JitDispose(const Napi::CallbackInfo& info) {
  bool tagged = false;
  if (!info[0].IsObject() || napi_check_object_type_tag(info.Env(), info[0], &kJitHandleTag, &tagged) != napi_ok || !tagged)
    ThrowType(info.Env(), "jitDispose: expected a TorchScript module handle");
  void* data = nullptr;
  if (napi_remove_wrap(info.Env(), info[0], &data) == napi_ok) delete static_cast<JitHolder*>(data);
  return info.Env().Undefined();
}

// Flatten a forward result into tensors: a tensor, or a tuple/list of tensors.
static void CollectTensors(const c10::IValue& v, std::vector<at::Tensor>& out) {
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isTuple()) {
    for (const auto& e : v.toTupleRef().elements()) CollectTensors(e, out);
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) CollectTensors(e, out);
  } else {
    throw std::runtime_error(std::string("forward returned a ") + v.tagKind() + "; only tensors and tuples/lists of tensors are supported");
  }
}

// jitForward(m, inputs[]) -> outputs[] (the tensors of the result, flattened in order)
static Napi::Value JitForward(const Napi::CallbackInfo& info) {
  torch::jit::Module& m = UnwrapJit(info[0], "jitForward");
  std::vector<at::Tensor> xs = UnwrapList(info[1], "jitForward inputs");
  std::vector<c10::IValue> args(xs.begin(), xs.end());
  c10::IValue y = m.forward(std::move(args));
  std::vector<at::Tensor> out;
  CollectTensors(y, out);
  return WrapList(info.Env(), out);
}

// jitForward1(m, x) -> output handle: forward with one input, without the arrays of jitForward
// (the per-call path of served and benchmarked models). A result that is not a single tensor
// comes back as jitForward's flattened list, so callers keep one error path for it.
static Napi::Value JitForward1(const Napi::CallbackInfo& info) {
  torch::jit::Module& m = UnwrapJit(info[0], "jitForward1");
  std::vector<c10::IValue> args;
  args.reserve(1);
  args.emplace_back(Unwrap(info[1], "jitForward1 input"));
  c10::IValue y = m.forward(std::move(args));
  if (y.isTensor()) return Wrap(info.Env(), std::move(y).toTensor());
  std::vector<at::Tensor> out;
  CollectTensors(y, out);
  return WrapList(info.Env(), out);
}

// Named tensors as [names[], handles[]]; the handles share storage with the module's own.
template <typename List>
static Napi::Value NamedList(Napi::Env env, List list) {
  std::vector<std::string> names;
  std::vector<at::Tensor> ts;
  for (const auto& nt : list) {
    names.push_back(nt.name);
    ts.push_back(nt.value);
  }
  Napi::Array ns = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); i++) ns.Set(static_cast<uint32_t>(i), Napi::String::New(env, names[i]));
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, ns);
  out.Set(1u, WrapList(env, ts));
  return out;
}

// jitParameters(m) -> [names, handles]
static Napi::Value JitParameters(const Napi::CallbackInfo& info) {
  return NamedList(info.Env(), UnwrapJit(info[0], "jitParameters").named_parameters(/*recurse=*/true));
}

// jitBuffers(m) -> [names, handles]
static Napi::Value JitBuffers(const Napi::CallbackInfo& info) {
  return NamedList(info.Env(), UnwrapJit(info[0], "jitBuffers").named_buffers(/*recurse=*/true));
}

// jitTrain(m, on)
static Napi::Value JitTrain(const Napi::CallbackInfo& info) {
  UnwrapJit(info[0], "jitTrain").train(Bool(info[1], "on"));
  return info.Env().Undefined();
}

// jitIsTraining(m)
static Napi::Value JitIsTraining(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), UnwrapJit(info[0], "jitIsTraining").is_training());
}

// jitTo(m, device|null, dtype|null): moves parameters and buffers in place (set_data: the
// tensors keep their identity, so handles from jitParameters follow); dtype applies to
// floating-point tensors only (counters such as num_batches_tracked keep theirs)
static Napi::Value JitTo(const Napi::CallbackInfo& info) {
  torch::jit::Module& m = UnwrapJit(info[0], "jitTo");
  c10::optional<at::Device> device;
  if (!IsNullish(info[1])) device = Device(info[1]);
  c10::optional<at::ScalarType> dtype;
  if (!IsNullish(info[2])) dtype = DType(info[2]);
  at::AutoGradMode no_grad(false);
  auto move = [&](at::Tensor t) {
    at::ScalarType st = dtype.has_value() && t.is_floating_point() ? *dtype : t.scalar_type();
    t.set_data(t.to(device.value_or(t.device()), st));
  };
  for (const at::Tensor& p : m.parameters(/*recurse=*/true)) move(p);
  for (const at::Tensor& b : m.buffers(/*recurse=*/true)) move(b);
  return info.Env().Undefined();
}

// jitClone(m) -> an independent deep copy (own parameters)
static Napi::Value JitClone(const Napi::CallbackInfo& info) {
  return WrapJit(info.Env(), UnwrapJit(info[0], "jitClone").clone());
}

// jitSave(m, path)
static Napi::Value JitSave(const Napi::CallbackInfo& info) {
  UnwrapJit(info[0], "jitSave").save(Str(info[1], "jitSave path"));
  return info.Env().Undefined();
}

void RegisterJit(Napi::Env env, Napi::Object exports) {
  Export<JitLoad>(env, exports, "jitLoad");
  Export<JitDispose>(env, exports, "jitDispose");
  Export<JitForward>(env, exports, "jitForward");
  Export<JitForward1>(env, exports, "jitForward1");
  Export<JitParameters>(env, exports, "jitParameters");
  Export<JitBuffers>(env, exports, "jitBuffers");
  Export<JitTrain>(env, exports, "jitTrain");
  Export<JitIsTraining>(env, exports, "jitIsTraining");
  Export<JitTo>(env, exports, "jitTo");
  Export<JitClone>(env, exports, "jitClone");
  Export<JitSave>(env, exports, "jitSave");
}

}  // namespace coded
