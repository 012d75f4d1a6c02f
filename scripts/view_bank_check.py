"""The banked teacher logits of a few views against the teacher run live on the same views (README, "A view bank").

python scripts/view_bank_check.py [TEACHER (runs/view-bank/teacher)]
"""

import json
import sys
from pathlib import Path

import torch

from distill.datasets import PairedViews, create_dataset
from distill.kd.view_bank import BankedTeacherViews, BankSpec, ViewBank
from teacher import TeacherFolder

root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/view-bank/teacher")
folder = next(path.parent for path in (root / "view_bank").glob("*/bank.json"))
rec = json.loads((folder / "bank.json").read_text())
sp = rec["spec"]
spec = BankSpec(
    **{
        **sp,
        "teacher_size": tuple(sp["teacher_size"]),
        "scale_range": tuple(sp["scale_range"]),
        "outputs": tuple((k, tuple(v) if v else None) for k, v in sp["outputs"]),
    }
)
data = create_dataset("camvid:../shared/data/camvid", "train")
teacher = TeacherFolder(root).load().eval()
views = PairedViews(data, (192, 256), student_size=(96, 128), train=True, seed=1, views=16, view_seed=0)
banked = BankedTeacherViews(views, ViewBank(folder, spec))
for epoch, index in [(0, 3), (5, 100), (11, 250), (16, 366)]:
    banked.set_epoch(epoch)
    item = banked[index]
    with torch.no_grad():
        live = teacher(item["teacher_image"][None])[0]
    diff = (item["teacher_logits"] - live).abs()
    agree = (item["teacher_logits"].argmax(0) == live.argmax(0)).float().mean()
    print(
        f"epoch {epoch} image {index} view {item['params']['view']}: |banked - live| max {diff.max():.4f}, "
        f"mean {diff.mean():.5f} (mean |logit| {live.abs().mean():.3f}); same argmax at {agree:.2%} of pixels"
    )
