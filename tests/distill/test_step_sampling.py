from __future__ import annotations

from distill.training.step_sampling import StepBatchSampler


def test_resuming_replays_the_same_batches():
    full = list(StepBatchSampler(50, 4, seed=1, total_steps=30))
    resumed = list(StepBatchSampler(50, 4, seed=1, total_steps=30, start_step=17))
    assert resumed == full[17:]


def test_ranks_split_each_global_batch_without_overlap():
    ranks = [list(StepBatchSampler(40, 4, seed=0, total_steps=5, rank=r, world_size=2)) for r in range(2)]
    for step in range(5):
        assert not set(ranks[0][step]) & set(ranks[1][step])


def test_every_sample_once_per_epoch_and_epochs_reshuffle():
    batches = list(StepBatchSampler(12, 3, seed=0, total_steps=8))
    first, second = sorted(sum(batches[:4], [])), sorted(sum(batches[4:], []))
    assert first == list(range(12)) and second == list(range(12, 24))
    assert [i % 12 for i in sum(batches[:4], [])] != [i % 12 for i in sum(batches[4:], [])]
