// Marshalling between N-API values and libtorch objects. Almost no semantics here: names,
// defaults and validation of meaning live in TypeScript (src/engine). The few choices made in
// C++ carry a comment where they are made (ScalarFor and the op tables in ops.cc, toArray's
// widening in tensor_basics.cc, the reductions by name in nn.cc).
#pragma once

#include <napi.h>

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <atomic>
#include <string>
#include <vector>

namespace coded {

// A JS tensor handle is a type-tagged JS object wrapping a heap torch::Tensor (see
// marshal.cc). dispose() frees it at once; a GC finalizer is the backstop when JS forgets.
using Holder = at::Tensor;

std::atomic<int64_t>& LiveHandles();

Napi::Value Wrap(Napi::Env env, at::Tensor t);
Napi::Value WrapList(Napi::Env env, const std::vector<at::Tensor>& ts);

at::Tensor& Unwrap(const Napi::Value& v, const char* what);
// The holder behind a handle, nullptr once disposed (throws for a value that is no handle).
Holder* HolderOf(const Napi::Value& v, const char* what);
// Free a handle's tensor reference and native bookkeeping now (idempotent).
void DisposeHandle(const Napi::Value& v, const char* what);
at::Tensor UnwrapOptional(const Napi::Value& v, const char* what);  // undefined tensor for null
c10::optional<at::Tensor> OptionalTensor(const Napi::Value& v, const char* what);
std::vector<at::Tensor> UnwrapList(const Napi::Value& v, const char* what);

std::vector<int64_t> Ints(const Napi::Value& v, const char* what);
int64_t Int(const Napi::Value& v, const char* what);
double Num(const Napi::Value& v, const char* what);
bool Bool(const Napi::Value& v, const char* what);
std::string Str(const Napi::Value& v, const char* what);
bool IsNullish(const Napi::Value& v);

// dtype codes shared with src/engine/native.ts
at::ScalarType DType(const Napi::Value& v);
int DTypeCode(at::ScalarType t);
at::Device Device(const Napi::Value& v);

[[noreturn]] void ThrowType(Napi::Env env, const std::string& msg);

// Every exported function goes through Guarded: C++ and libtorch exceptions become JS
// Errors carrying libtorch's message (without the C++ backtrace); nothing aborts.
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value Guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(info.Env(), std::string("libtorch: ") + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("native: ") + e.what());
  } catch (...) {
    throw Napi::Error::New(info.Env(), "native: unknown C++ exception");
  }
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
void Export(Napi::Env env, Napi::Object exports, const char* name) {
  exports.Set(name, Napi::Function::New(env, Guarded<F>, name));
}

void RegisterTensorBasics(Napi::Env env, Napi::Object exports);
void RegisterOps(Napi::Env env, Napi::Object exports);
void RegisterNN(Napi::Env env, Napi::Object exports);
void RegisterAutograd(Napi::Env env, Napi::Object exports);
void RegisterJit(Napi::Env env, Napi::Object exports);

}  // namespace coded
