// Autograd: requires-grad flags, .grad access, backward and torch::autograd::grad,
// and the thread-local grad mode that noGrad() toggles.
#include "marshal.h"

#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/autograd.h>

namespace coded {

static Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Unwrap(info[0], "requiresGrad").requires_grad());
}
static Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  Unwrap(info[0], "setRequiresGrad").requires_grad_(Bool(info[1], "requiresGrad"));
  return info.Env().Undefined();
}
static Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), Unwrap(info[0], "isLeaf").is_leaf());
}
static Napi::Value Grad(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), Unwrap(info[0], "grad").grad());
}
static Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  Unwrap(info[0], "setGrad").mutable_grad() = UnwrapOptional(info[1], "setGrad value");
  return info.Env().Undefined();
}
// backward(t, gradient|null, retainGraph, createGraph)
static Napi::Value Backward(const Napi::CallbackInfo& info) {
  at::Tensor& t = Unwrap(info[0], "backward");
  t.backward(UnwrapOptional(info[1], "backward gradient"), Bool(info[2], "retainGraph"), Bool(info[3], "createGraph"));
  return info.Env().Undefined();
}
// gradOf(outputs, inputs, gradOutputs|null, retainGraph, createGraph, allowUnused) -> (handle|null)[]
static Napi::Value GradOf(const Napi::CallbackInfo& info) {
  std::vector<at::Tensor> outputs = UnwrapList(info[0], "grad outputs");
  std::vector<at::Tensor> inputs = UnwrapList(info[1], "grad inputs");
  std::vector<at::Tensor> gradOutputs;
  if (!IsNullish(info[2])) gradOutputs = UnwrapList(info[2], "grad gradOutputs");
  auto grads = torch::autograd::grad(outputs, inputs, gradOutputs, Bool(info[3], "retainGraph"), Bool(info[4], "createGraph"),
                                     Bool(info[5], "allowUnused"));
  return WrapList(info.Env(), grads);
}
static Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}
static Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  at::GradMode::set_enabled(Bool(info[0], "enabled"));
  return info.Env().Undefined();
}

void RegisterAutograd(Napi::Env env, Napi::Object e) {
  Export<RequiresGrad>(env, e, "requiresGrad");
  Export<SetRequiresGrad>(env, e, "setRequiresGrad");
  Export<IsLeaf>(env, e, "isLeaf");
  Export<Grad>(env, e, "grad");
  Export<SetGrad>(env, e, "setGrad");
  Export<Backward>(env, e, "backward");
  Export<GradOf>(env, e, "gradOf");
  Export<IsGradEnabled>(env, e, "isGradEnabled");
  Export<SetGradEnabled>(env, e, "setGradEnabled");
}

}  // namespace coded
