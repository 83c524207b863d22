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
