// Module entry: registers the marshalling functions. See marshal.h.
#include "marshal.h"

namespace coded {
static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RegisterTensorBasics(env, exports);
  RegisterOps(env, exports);
  RegisterNN(env, exports);
  RegisterAutograd(env, exports);
  RegisterJit(env, exports);
  return exports;
}
}  // namespace coded

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return coded::Init(env, exports); }

NODE_API_MODULE(coded_torch, InitAddon)
