"""A banked run's training batches against the live teacher's, batch by batch (README, "A view bank").

Builds the data a `distill run` reads, both ways, for one seed: the banked views (rows read from
the teacher's existing bank, through the step sampler and DataLoader training uses) and the live
views (the teacher image of each sample); then, at steps spread over the run (both view cycles),
checks that the student images are identical and compares the banked teacher logits with the
teacher run live on the batch.

    python scripts/view_bank_loader_check.py [TEACHER (runs/view-bank/teacher)] [SEED (1)]
"""

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from distill.training.run_bank import banked_views, run_views
from distill.training.run_config import RunConfig
from distill.training.step_sampling import EpochAddressed, StepBatchSampler
from distill.training.student import _set_up
from prompt_kit.yaml_files import read_yaml

teacher_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/view-bank/teacher")
seed = int(sys.argv[2]) if len(sys.argv) > 2 else 1
fields = read_yaml(Path("configs/camvid_kd_student.yaml"), "config")
config = RunConfig(**fields, teacher=str(teacher_dir), kd="dist", seed=seed, out="/tmp/unused")
setup = _set_up(config)
live = run_views(config, setup.train_data, setup.teacher_size)
banked, cost = banked_views(
    config, setup.teacher, setup.train_data, run_views(config, setup.train_data, None), setup.teacher_size,
    setup.student.output_info, setup.accelerator,
)  # fmt: skip
assert cost["teacher_forward_images"] == 0, "the bank was not there: this check reads an existing bank"


def batches(views, start: int, count: int):
    sampler = StepBatchSampler(len(views), config.batch_size, seed, start + count, start_step=start)
    return DataLoader(EpochAddressed(views), batch_sampler=sampler, num_workers=config.num_workers)


worst = 0.0
for start in (0, 44, 45, 400, 719, 720, 795):  # 45 steps an epoch: epochs 0, 1, 8, 15, 16 (the second cycle), 17
    for step, (a, b) in enumerate(zip(batches(banked, start, 2), batches(live, start, 2), strict=True), start):
        assert torch.equal(a["student_image"], b["student_image"]), f"step {step}: the student images differ"
        assert torch.equal(a["params"]["view"], b["params"]["view"])
        with torch.no_grad():
            teacher = setup.teacher(b["teacher_image"])
        if teacher.shape[-2:] != a["teacher_logits"].shape[-2:]:
            teacher = F.interpolate(teacher, size=a["teacher_logits"].shape[-2:], mode="bilinear", align_corners=False)
        diff = (a["teacher_logits"] - teacher).abs()
        same = (a["teacher_logits"].argmax(1) == teacher.argmax(1)).float().mean()
        worst = max(worst, float(diff.max()))
        print(
            f"step {step} (epoch {step // 45}, views {a['params']['view'][:4].tolist()}...): |banked - live| "
            f"max {diff.max():.4f} mean {diff.mean():.5f}, same class at {same:.2%} of pixels"
        )
print(f"largest difference over the checked steps: {worst:.4f}")
