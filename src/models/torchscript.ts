// A TorchScript file (torch.jit.trace / torch.jit.script + save) as an nn Module, run by
// libtorch's JIT in the addon (native/jit.cc). Its parameters and buffers are engine tensors
// sharing storage with the JIT module, under PyTorch's dotted names (features.0.weight), so
// optimisers train them in place, state dicts match PyTorch's, and gradients flow through
// forward to the input (a frozen F for learned codes: freeze() its parameters).
// TorchScript files do not record their input shape: callers take it from --input-shape.
import { existsSync, statSync } from 'node:fs';
import { native, type JitHandle } from '../engine/native.js';
import { Tensor } from '../engine/tensor.js';
import { dtypeCode, isFloating, type Device, type DType } from '../engine/dtype.js';
import { Module } from '../nn/module.js';

/** A node of the parameter tree mirroring the JIT module's submodules (no forward of its own). */
class SubmoduleTensors extends Module {
  forward(): Tensor {
    throw new Error('a TorchScript submodule has no forward of its own here; call the TorchScript module');
  }
  child(name: string): SubmoduleTensors {
    const found = this.children().find(([n]) => n === name);
    return (found?.[1] as SubmoduleTensors | undefined) ?? this.registerModule(name, new SubmoduleTensors());
  }
  addParameter(name: string, t: Tensor, requiresGrad: boolean): void {
    this.registerParameter(name, t);
    if (!requiresGrad) t.requiresGrad_(false);
  }
  addBuffer(name: string, t: Tensor): void {
    this.registerBuffer(name, t);
  }
}

/** Where a TorchScript file's error message tells the user how to make one. */
const HOW_TO_SAVE =
  'save the model with torch.jit.trace(model.eval(), example_input).save(PATH) or torch.jit.script(model).save(PATH) (torch.save(model) or a state dict is not TorchScript)';

export class TorchScriptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TorchScriptError';
  }
}

export class TorchScriptModule extends Module {
  private jit: JitHandle | null;
  private readonly tree = new SubmoduleTensors();

  private constructor(
    handle: JitHandle,
    readonly path: string,
  ) {
    super();
    this.jit = handle;
    const [pNames, pHandles] = native.jitParameters(handle);
    const [bNames, bHandles] = native.jitBuffers(handle);
    pNames.forEach((n, i) => {
      const t = new Tensor(pHandles[i]);
      const { node, leaf } = this.place(n);
      node.addParameter(leaf, t, t.requiresGrad);
    });
    bNames.forEach((n, i) => {
      const { node, leaf } = this.place(n);
      node.addBuffer(leaf, new Tensor(bHandles[i]));
    });
    // keep the file's train/eval state (a traced graph bakes in the mode it was traced in)
    super.train(native.jitIsTraining(handle));
  }

  private place(dotted: string): { node: SubmoduleTensors; leaf: string } {
    const parts = dotted.split('.');
    const leaf = parts.pop()!;
    let node: SubmoduleTensors | null = null;
    for (const p of parts) node = node === null ? this.childOfRoot(p) : node.child(p);
    return { node: node ?? this.rootTensors(), leaf };
  }
  private childOfRoot(name: string): SubmoduleTensors {
    const found = this.children().find(([n]) => n === name);
    return (found?.[1] as SubmoduleTensors | undefined) ?? this.registerModule(name, new SubmoduleTensors());
  }
  /** Parameters of the root module itself (names without a dot) live on this module. */
  private rootTensors(): SubmoduleTensors {
    return this.tree;
  }
  override namedParameters(prefix = ''): [string, Tensor][] {
    return [...this.tree.namedParameters(prefix), ...super.namedParameters(prefix)];
  }
  override namedBuffers(prefix = ''): [string, Tensor][] {
    return [...this.tree.namedBuffers(prefix), ...super.namedBuffers(prefix)];
  }
  override stateDict(): Map<string, Tensor> {
    return new Map([...this.tree.stateDict(), ...super.stateDict()]);
  }

  /** Load a TorchScript file (onto `device`, default its saved device). Throws a TorchScriptError naming the file and how to make one. */
  static load(path: string, device?: Device): TorchScriptModule {
    if (!existsSync(path)) throw new TorchScriptError(`${path}: no such file (a TorchScript model file is expected; ${HOW_TO_SAVE})`);
    if (!statSync(path).isFile()) throw new TorchScriptError(`${path} is not a file (a TorchScript model file is expected)`);
    let handle: JitHandle;
    try {
      handle = native.jitLoad(path, device ?? null);
    } catch (e) {
      const why = (e as Error).message.split('\n')[0];
      throw new TorchScriptError(`${path} is not a TorchScript file libtorch ${native.version()} can load (${why}); ${HOW_TO_SAVE}`);
    }
    return new TorchScriptModule(handle, path);
  }

  private get handle(): JitHandle {
    if (this.jit === null) throw new TorchScriptError(`TorchScript module ${this.path} used after dispose()`);
    return this.jit;
  }

  /** forward(x): one input through the addon's single-input entry point (no input or output arrays per call). */
  forward(x: Tensor): Tensor {
    let out: ReturnType<typeof native.jitForward1>;
    try {
      out = native.jitForward1(this.handle, x.handle);
    } catch (e) {
      throw this.forwardError(e as Error, [x]);
    }
    return Array.isArray(out) ? this.oneTensor(out.map((h) => new Tensor(h))) : new Tensor(out);
  }

  /** forward(*inputs) of the TorchScript module; it must return one tensor. */
  forwardInputs(inputs: Tensor[]): Tensor {
    if (inputs.length === 1) return this.forward(inputs[0]);
    let outs: Tensor[];
    try {
      outs = native
        .jitForward(
          this.handle,
          inputs.map((t) => t.handle),
        )
        .map((h) => new Tensor(h));
    } catch (e) {
      throw this.forwardError(e as Error, inputs);
    }
    return this.oneTensor(outs);
  }

  private forwardError(e: Error, inputs: Tensor[]): TorchScriptError {
    const shapes = inputs.map((t) => `[${t.shape.join(', ')}]`).join(', ');
    const why =
      e.message
        .replace(/^libtorch: /, '')
        .split('\n')
        .find((l) => /error|expected|size|shape|mismatch|must/i.test(l)) ?? e.message.split('\n')[0];
    return new TorchScriptError(
      `${this.path}: forward failed on input ${shapes}: ${why.trim()}. TorchScript files do not record their input shape: check --input-shape (per example, without the batch dimension)`,
    );
  }

  /** The single tensor a served or coded model must return. */
  private oneTensor(outs: Tensor[]): Tensor {
    if (outs.length !== 1) {
      for (const t of outs) t.dispose();
      throw new TorchScriptError(
        `${this.path}: forward returned ${outs.length} tensors; a served or coded model must return one tensor (wrap the model so forward returns its logits)`,
      );
    }
    return outs[0];
  }

  override train(mode = true): this {
    super.train(mode);
    native.jitTrain(this.handle, mode);
    return this;
  }

  /**
   * Move parameters and buffers to a device, or cast the floating-point ones to a floating
   * dtype, in place (the tensors keep their identity and stay shared with the JIT module).
   */
  override to(target: Device | DType): this {
    if (/^(cpu|cuda)/.test(target)) {
      native.jitTo(this.handle, target, null);
      return this;
    }
    if (!isFloating(target as DType)) throw new TypeError(`Module.to() casts to floating-point dtypes only, got '${target}'`);
    native.jitTo(this.handle, null, dtypeCode(target as DType));
    return this;
  }

  /** An independent copy (own parameters): ParM's parity model with F's architecture. */
  clone(): TorchScriptModule {
    return new TorchScriptModule(native.jitClone(this.handle), this.path);
  }

  /** Save as TorchScript (the graph with the current weights), loadable by PyTorch and Triton's libtorch backend. */
  save(path: string): void {
    native.jitSave(this.handle, path);
  }

  override dispose(): void {
    super.dispose();
    this.tree.dispose(); // the root's own tensors (names without a dot)
    if (this.jit !== null) native.jitDispose(this.jit);
    this.jit = null;
  }
}

/** Load a TorchScript file (a model builder for worker threads and the registry alike). */
export function loadTorchScript(path: string, device?: Device): TorchScriptModule {
  return TorchScriptModule.load(path, device);
}
