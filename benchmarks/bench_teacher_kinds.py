"""Train-step time of every kind of teacher beside the students, in one run on this machine.

    python benchmarks/bench_teacher_kinds.py [--size 96x128] [--batch 8] [--kinds ...]

Kinds: the tiny diffusion teacher on unshuffled pixels (the default), the diffusion teacher on a
frozen EfficientNet-Lite0 feature latent, the prompt-conditioned EfficientNet-Lite2 (its
classifier the class embeddings, ``model.architecture=network``), and each registered
teacher-size network; the tiny and
EfficientNet-Lite0 students are measured in the same run and every ratio is against the Lite0
student (the CamVid student). A train step is forward + cross-entropy + backward + AdamW step, the
median of 5 after 2 warm-up steps, contiguous memory format for every model (``distill run``
trains students channels-last, which makes Lite0 faster still); inference is per image, no
gradients.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from bench_teacher import embeddings as random_class_embeddings  # the same MiniLM-sized embeddings
from bench_teacher import median_seconds

from networks import create_network, list_teacher_networks
from teacher import (
    DiffusionSegTeacher,
    DiffusionTeacherConfig,
    EmbeddingClassifiedNetwork,
    NetworkTeacher,
    NetworkTeacherConfig,
    PromptConditionedTeacher,
)

CLASSES = 11


def build(kind: str):
    """(trainable module, predict(images) for a train step, Teacher for inference)."""
    torch.manual_seed(0)
    names = [f"c{i}" for i in range(CLASSES)]
    if kind in ("diffusion_pixels", "diffusion_lite0_features"):
        latent = "pixels" if kind == "diffusion_pixels" else "efficientnet_lite0"
        model = DiffusionSegTeacher(DiffusionTeacherConfig(num_classes=CLASSES, embedding_dim=384, latent=latent))
        embeddings = random_class_embeddings()
        return model, (lambda images: model(images, embeddings)), PromptConditionedTeacher(model, embeddings)
    if kind == "prompt_network_lite2":
        config = NetworkTeacherConfig(
            num_classes=CLASSES, embedding_dim=384, architecture="network", class_projection="frozen"
        )
        model = EmbeddingClassifiedNetwork(config, imagenet=False)
        embeddings = random_class_embeddings()
        return model, (lambda images: model(images, embeddings)), PromptConditionedTeacher(model, embeddings)
    network = create_network(kind, CLASSES)
    teacher = NetworkTeacher(network, names, name=kind)
    return network, (lambda images: teacher.predict(images)[0]), teacher


def measure(kind: str, height: int, width: int, batch: int) -> tuple[float, float]:
    module, predict, teacher = build(kind)
    images = torch.rand(batch, 3, height, width)
    labels = torch.randint(0, CLASSES, (batch, height, width))
    optimizer = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], 1e-4)

    def train_step():
        module.train()
        logits = F.interpolate(predict(images), size=(height, width), mode="bilinear", align_corners=False)
        F.cross_entropy(logits, labels).backward()
        optimizer.step()
        optimizer.zero_grad()

    def infer():
        teacher.eval()
        with torch.no_grad():
            teacher(images)

    return median_seconds(train_step), median_seconds(infer) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="96x128")
    parser.add_argument("--batch", type=int, default=8)
    default_kinds = ["diffusion_pixels", "diffusion_lite0_features", "prompt_network_lite2", *list_teacher_networks()]
    parser.add_argument("--kinds", nargs="+", default=default_kinds)
    args = parser.parse_args()
    height, width = (int(side) for side in args.size.split("x"))
    print(f"{args.batch} images of {height}x{width}, {CLASSES} classes, torch threads {torch.get_num_threads()}")
    baseline, baseline_infer = measure("efficientnet_lite0", height, width, args.batch)
    rows = [("student efficientnet_lite0", baseline, baseline_infer)]
    rows.append(("student tiny", *measure("tiny", height, width, args.batch)))
    for kind in args.kinds:
        rows.append((f"teacher {kind}", *measure(kind, height, width, args.batch)))
    print(f"{'model':<38} {'train s/step':>12} {'vs Lite0 student':>16} {'infer ms/img':>12}")
    for name, train, infer in rows:
        print(f"{name:<38} {train:12.3f} {train / baseline:15.2f}x {infer * 1000:12.1f}")


if __name__ == "__main__":
    main()
