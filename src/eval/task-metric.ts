// Task-aware evaluation metrics through one interface: a metric scores each prediction against
// its target in [0, 1] (higher is better), so code evaluation can report a base score, a
// degraded-mode score over reconstructions and a default-answer baseline whatever the task.
//   - classification accuracy: argmax of the output equals the label (targets: int64 labels [B]);
//   - box IoU: intersection over union of a predicted box (x0, y0, x1, y1) with the true box
//     (targets: [B, 4]); a predicted box with x1 < x0 or y1 < y0 has zero area.
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';

export interface TaskMetric {
  /** e.g. "accuracy", "IoU" */
  readonly name: string;
  /** per-sample scores [B] in [0, 1] of outputs [B, ...] against targets [B, ...] */
  scores(outputs: Tensor, targets: Tensor): Tensor;
}

export const classificationAccuracy: TaskMetric = {
  name: 'accuracy',
  scores: (outputs, labels) =>
    tidy(() =>
      outputs
        .argmax(-1)
        .eq(labels.reshape([-1]))
        .float(),
    ),
};

/** IoU of boxes a [B, 4] and b [B, 4] (x0, y0, x1, y1), per row. */
export function boxIoU(a: Tensor, b: Tensor): Tensor {
  if (a.shape.length !== 2 || a.shape[1] !== 4 || b.shape.join(',') !== a.shape.join(',')) {
    throw new RangeError(`boxIoU: expected two [B, 4] box tensors, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  }
  return tidy(() => {
    const col = (t: Tensor, i: number) => t.select(1, i);
    const area = (t: Tensor) =>
      col(t, 2)
        .sub(col(t, 0))
        .clamp(0)
        .mul(col(t, 3).sub(col(t, 1)).clamp(0));
    const iw = col(a, 2)
      .minimum(col(b, 2))
      .sub(col(a, 0).maximum(col(b, 0)))
      .clamp(0);
    const ih = col(a, 3)
      .minimum(col(b, 3))
      .sub(col(a, 1).maximum(col(b, 1)))
      .clamp(0);
    const inter = iw.mul(ih);
    const union = area(a).add(area(b)).sub(inter);
    return inter.div(union.clamp(1e-12));
  });
}

export const boxIntersectionOverUnion: TaskMetric = {
  name: 'IoU',
  scores: (outputs, boxes) => boxIoU(outputs.reshape([-1, 4]), boxes.reshape([-1, 4])),
};
