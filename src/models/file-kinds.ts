// Which kind of model file a path names, by extension (no libtorch: the serving main thread uses it).
export const TORCHSCRIPT_EXTENSIONS = ['.pt', '.pth', '.torchscript'];

export function isTorchScriptPath(path: string): boolean {
  const lower = path.toLowerCase();
  return TORCHSCRIPT_EXTENSIONS.some((e) => lower.endsWith(e));
}

export function isOnnxPath(path: string): boolean {
  return path.toLowerCase().endsWith('.onnx');
}
