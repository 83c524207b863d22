// Process-wide engine settings.
import { native } from './native.js';

/** Intra-op threads libtorch uses (defaults to every core, or CODED_NUM_THREADS). */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`setNumThreads: need a positive integer, got ${n}`);
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
/** Seed libtorch's generators (CPU and CUDA). */
export function manualSeed(seed: number): void {
  if (!Number.isInteger(seed) || seed < 0) throw new RangeError(`manualSeed: need a non-negative integer, got ${seed}`);
  native.manualSeed(seed);
}
/**
 * Deterministic algorithms (libtorch's at::globalContext().setDeterministicAlgorithms, cuDNN
 * deterministic, no cuDNN benchmarking): reruns with the same seed on one machine give the same
 * numbers; an op without a deterministic implementation throws instead of running. For CUDA,
 * cuBLAS also needs CUBLAS_WORKSPACE_CONFIG, set here (to :4096:8) unless already set: call this
 * before the first CUDA computation.
 */
export function setDeterministic(on: boolean): void {
  if (on && process.env.CUBLAS_WORKSPACE_CONFIG === undefined) process.env.CUBLAS_WORKSPACE_CONFIG = ':4096:8';
  native.setDeterministic(on);
}
export function isDeterministic(): boolean {
  return native.getDeterministic();
}
export function cudaAvailable(): boolean {
  return native.cudaAvailable();
}
export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}
/** Wait for queued CUDA work (no-op without CUDA); use before reading clocks in benchmarks. */
export function synchronize(): void {
  native.cudaSynchronize();
}
export function torchVersion(): string {
  return native.version();
}
/** Native tensor handles alive right now (for leak checks). */
export function liveTensors(): number {
  return native.liveHandles();
}
