// Neural-network operators (layers' functional forms and losses).
#include "marshal.h"

namespace coded {

// linear(x, w, b|null)
static Napi::Value Linear(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::linear(Unwrap(info[0], "linear input"), Unwrap(info[1], "linear weight"), OptionalTensor(info[2], "linear bias")));
}

// conv2d(x, w, b|null, stride[2], padding[2], dilation[2], groups)
static Napi::Value Conv2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::conv2d(Unwrap(info[0], "conv2d input"), Unwrap(info[1], "conv2d weight"), OptionalTensor(info[2], "conv2d bias"),
                                     Ints(info[3], "stride"), Ints(info[4], "padding"), Ints(info[5], "dilation"), Int(info[6], "groups")));
}

// convTranspose2d(x, w, b|null, stride, padding, outputPadding, groups, dilation)
static Napi::Value ConvTranspose2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::conv_transpose2d(Unwrap(info[0], "convTranspose2d input"), Unwrap(info[1], "convTranspose2d weight"),
                                               OptionalTensor(info[2], "convTranspose2d bias"), Ints(info[3], "stride"), Ints(info[4], "padding"),
                                               Ints(info[5], "outputPadding"), Int(info[6], "groups"), Ints(info[7], "dilation")));
}

// batchNorm(x, weight|null, bias|null, runningMean|null, runningVar|null, training, momentum, eps)
static Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::batch_norm(Unwrap(info[0], "batchNorm input"), OptionalTensor(info[1], "batchNorm weight"),
                                         OptionalTensor(info[2], "batchNorm bias"), OptionalTensor(info[3], "batchNorm runningMean"),
                                         OptionalTensor(info[4], "batchNorm runningVar"), Bool(info[5], "training"),
                                         Num(info[6], "momentum"), Num(info[7], "eps"), /*cudnn_enabled=*/true));
}

// layerNorm(x, normalizedShape, weight|null, bias|null, eps)
static Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::layer_norm(Unwrap(info[0], "layerNorm input"), Ints(info[1], "normalizedShape"), OptionalTensor(info[2], "layerNorm weight"),
                                         OptionalTensor(info[3], "layerNorm bias"), Num(info[4], "eps")));
}

// maxPool2d(x, kernel, stride, padding, dilation, ceilMode)
static Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::max_pool2d(Unwrap(info[0], "maxPool2d"), Ints(info[1], "kernel"), Ints(info[2], "stride"), Ints(info[3], "padding"),
                                         Ints(info[4], "dilation"), Bool(info[5], "ceilMode")));
}

// avgPool2d(x, kernel, stride, padding, ceilMode, countIncludePad)
static Napi::Value AvgPool2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::avg_pool2d(Unwrap(info[0], "avgPool2d"), Ints(info[1], "kernel"), Ints(info[2], "stride"), Ints(info[3], "padding"),
                                         Bool(info[4], "ceilMode"), Bool(info[5], "countIncludePad")));
}

static Napi::Value AdaptiveAvgPool2d(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::adaptive_avg_pool2d(Unwrap(info[0], "adaptiveAvgPool2d"), Ints(info[1], "outputSize")));
}

// interpolate(x, size[2], mode, alignCorners): mode 'nearest', 'bilinear', 'area' (adaptive
// average pooling, as torch.nn.functional.interpolate's 'area') or 'bicubic'
static Napi::Value Interpolate(const Napi::CallbackInfo& info) {
  at::Tensor& x = Unwrap(info[0], "interpolate");
  std::vector<int64_t> size = Ints(info[1], "interpolate size");
  std::string mode = Str(info[2], "interpolate mode");
  bool align = Bool(info[3], "alignCorners");
  if (mode == "nearest") return Wrap(info.Env(), at::upsample_nearest2d(x, size, c10::nullopt, c10::nullopt));
  if (mode == "bilinear") return Wrap(info.Env(), at::upsample_bilinear2d(x, size, align, c10::nullopt, c10::nullopt));
  if (mode == "area") return Wrap(info.Env(), at::adaptive_avg_pool2d(x, size));
  if (mode == "bicubic") return Wrap(info.Env(), at::upsample_bicubic2d(x, size, align, c10::nullopt, c10::nullopt));
  ThrowType(info.Env(), "unknown interpolate mode '" + mode + "'");
}

// dropout(x, p, train)
static Napi::Value Dropout(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::dropout(Unwrap(info[0], "dropout"), Num(info[1], "p"), Bool(info[2], "train")));
}

static Napi::Value Softmax(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::softmax(Unwrap(info[0], "softmax"), Int(info[1], "dim")));
}
static Napi::Value LogSoftmax(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::log_softmax(Unwrap(info[0], "logSoftmax"), Int(info[1], "dim")));
}

// A loss's reduction by name: 'none', 'mean' or 'sum' (at::Reduction's values)
static int64_t ReductionOf(const Napi::Value& v) {
  std::string r = Str(v, "reduction");
  if (r == "none") return at::Reduction::None;
  if (r == "mean") return at::Reduction::Mean;
  if (r == "sum") return at::Reduction::Sum;
  ThrowType(v.Env(), "unknown reduction '" + r + "'");
}

static Napi::Value MseLoss(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::mse_loss(Unwrap(info[0], "mseLoss input"), Unwrap(info[1], "mseLoss target"), ReductionOf(info[2])));
}
// klDiv(input, target, reduction, logTarget)
static Napi::Value KlDiv(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::kl_div(Unwrap(info[0], "klDiv input"), Unwrap(info[1], "klDiv target"), ReductionOf(info[2]), Bool(info[3], "logTarget")));
}
// crossEntropy(logits, target, weight|null, reduction, ignoreIndex, labelSmoothing)
static Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::cross_entropy_loss(Unwrap(info[0], "crossEntropy input"), Unwrap(info[1], "crossEntropy target"),
                                                 OptionalTensor(info[2], "crossEntropy weight"), ReductionOf(info[3]),
                                                 Int(info[4], "ignoreIndex"), Num(info[5], "labelSmoothing")));
}
// nllLoss(logProbs, target, weight|null, reduction, ignoreIndex)
static Napi::Value NllLoss(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::nll_loss_nd(Unwrap(info[0], "nllLoss input"), Unwrap(info[1], "nllLoss target"), OptionalTensor(info[2], "nllLoss weight"),
                                          ReductionOf(info[3]), Int(info[4], "ignoreIndex")));
}
// bceWithLogits(logits, target, reduction)
static Napi::Value BceWithLogits(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::binary_cross_entropy_with_logits(Unwrap(info[0], "bceWithLogits input"), Unwrap(info[1], "bceWithLogits target"),
                                                               c10::nullopt, c10::nullopt, ReductionOf(info[2])));
}
static Napi::Value L1Loss(const Napi::CallbackInfo& info) {
  return Wrap(info.Env(), at::l1_loss(Unwrap(info[0], "l1Loss input"), Unwrap(info[1], "l1Loss target"), ReductionOf(info[2])));
}

void RegisterNN(Napi::Env env, Napi::Object e) {
  Export<Linear>(env, e, "linear");
  Export<Conv2d>(env, e, "conv2d");
  Export<ConvTranspose2d>(env, e, "convTranspose2d");
  Export<BatchNorm>(env, e, "batchNorm");
  Export<LayerNorm>(env, e, "layerNorm");
  Export<MaxPool2d>(env, e, "maxPool2d");
  Export<AvgPool2d>(env, e, "avgPool2d");
  Export<AdaptiveAvgPool2d>(env, e, "adaptiveAvgPool2d");
  Export<Interpolate>(env, e, "interpolate");
  Export<Dropout>(env, e, "dropout");
  Export<Softmax>(env, e, "softmax");
  Export<LogSoftmax>(env, e, "logSoftmax");
  Export<MseLoss>(env, e, "mseLoss");
  Export<KlDiv>(env, e, "klDiv");
  Export<CrossEntropy>(env, e, "crossEntropy");
  Export<NllLoss>(env, e, "nllLoss");
  Export<BceWithLogits>(env, e, "bceWithLogits");
  Export<L1Loss>(env, e, "l1Loss");
}

}  // namespace coded
