"""train_many: N SAEs on one stream give each the weights it gets trained alone."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from sparse_dictionary import sparse_rows

from monosemantic.errors import ConfigError
from monosemantic.sae import SAEConfig
from monosemantic.sae.io import to_raw_units
from monosemantic.sae.registry import config_for
from monosemantic.train import TrainConfig, TrainJob, train_many, train_sae
from monosemantic.train import loop

D, B = 16, 128


def stream(n_batches: int) -> list[torch.Tensor]:
    x = torch.from_numpy(sparse_rows(B * n_batches, seed=1, d=D, n_true=48))
    return list(x.split(B))


def jobs(tmp_path=None, resume=False) -> list[TrainJob]:
    # Different architectures, widths, lengths, lrs and seeds on the same batches.
    specs = [(SAEConfig("relu", D, 64, l1_coefficient=1.0), TrainConfig(n_tokens=B * 30, batch_size=B, lr=3e-3, seed=0)),
             (SAEConfig("topk", D, 32, k=4), TrainConfig(n_tokens=B * 20, batch_size=B, lr=1e-3, seed=1)),
             (SAEConfig("jumprelu", D, 48), TrainConfig(n_tokens=B * 30, batch_size=B, lr=2e-3, seed=2)),
             (SAEConfig("batchtopk", D, 32, k=4), TrainConfig(n_tokens=B * 25, batch_size=B, lr=1e-3, seed=3)),
             (config_for({"architecture": "matryoshka", "d_in": D, "n_latents": 64, "k": 4}),
              TrainConfig(n_tokens=B * 30, batch_size=B, lr=1e-3, seed=4))]
    every = [10, 8, 10, 6, 7]   # checkpoints at different steps: a resumed pass restarts them at different steps
    return [TrainJob(s, TrainConfig(**{**c.to_dict(), "log_every": 5, "checkpoint_every": every[i]}),
                     tmp_path / str(i) if tmp_path is not None else None, resume) for i, (s, c) in enumerate(specs)]


def assert_same(a, b) -> None:
    for name, value in a.state_dict().items():
        torch.testing.assert_close(value, b.state_dict()[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("workers", [1, 2])
def test_each_sae_gets_the_weights_it_gets_alone(workers):
    # topk and batchtopk have the same [B, 32] pre-activations: stepped at once on two
    # threads they must not share sparse_topk's scratch buffer
    data = stream(30)
    done = []
    together = train_many(data, jobs(), progress=False, on_done=lambda i, r: done.append(i), workers=workers)
    assert sorted(done) == [0, 1, 2, 3, 4] and done[0] == 1, "a shorter job is reported when it finishes, before the others"
    for job, result in zip(jobs(), together):
        alone = train_sae(data, job.sae_cfg, job.cfg, progress=False)
        assert result.steps == alone.steps == job.cfg.total_steps
        assert_same(to_raw_units(result.sae.eval()), alone.sae)  # train_sae returns raw units, train_many the trained ones


class Interrupted(Exception):
    pass


def test_interrupted_pass_resumes_each_sae_from_its_own_checkpoint(tmp_path, monkeypatch):
    data = stream(30)
    reference = train_many(data, jobs(), progress=False)
    real = loop.lr_factor

    def stop_at_17(step, *args):
        if step == 17:
            raise Interrupted
        return real(step, *args)

    monkeypatch.setattr(loop, "lr_factor", stop_at_17)
    with pytest.raises(Interrupted):
        train_many(data, jobs(tmp_path), progress=False)
    monkeypatch.setattr(loop, "lr_factor", real)
    assert all((tmp_path / str(i) / "checkpoints" / "latest.pt").is_file() for i in range(5))
    resumed = train_many(data, jobs(tmp_path, resume=True), progress=False)
    assert [r.resumed_from for r in resumed] == [10, 16, 10, 12, 14]
    for a, b in zip(reference, resumed):
        assert_same(a.sae, b.sae)


def test_saes_of_different_batch_sizes_are_refused():
    a, b = jobs()[:2]
    b.cfg = TrainConfig(n_tokens=B * 20, batch_size=B * 2)
    with pytest.raises(ConfigError, match="batch size"):
        train_many(stream(2), [a, b], progress=False)


def test_saes_step_at_once_on_worker_threads(monkeypatch):
    threads = set()
    real = loop.SAETrainer.step

    def step(self, *args, **kwargs):
        threads.add((threading.current_thread().name, torch.get_num_threads()))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(loop.SAETrainer, "step", step)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        between = []   # on_done runs on the calling thread, which keeps its two threads
        train_many(stream(30), jobs(), progress=False, workers=2, on_done=lambda i, r: between.append(torch.get_num_threads()))
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    workers = {name: n for name, n in threads if name.startswith("sae-step")}
    assert len(workers) == 2 and set(workers.values()) == {1}   # two SAEs at once, one intra-op thread each
    assert set(between) == {2} and after == 2


def test_the_clocks_of_overlapping_steps_add_up_to_the_wall_time(monkeypatch):
    real = loop.lr_factor

    def slow_lr_factor(*args):
        time.sleep(0.03)   # inside the step's clock; releases the GIL, so five such steps overlap
        return real(*args)

    monkeypatch.setattr(loop, "lr_factor", slow_lr_factor)
    start = time.perf_counter()
    results = train_many(stream(30), jobs(), progress=False, workers=5)
    wall = time.perf_counter() - start
    assert sum(r.seconds for r in results) <= wall   # the sweep's FLOP/s pools these clocks


def test_a_step_that_draws_random_numbers_is_refused_concurrently(monkeypatch):
    real = loop.SAETrainer.step

    def step(self, *args, **kwargs):
        torch.rand(1)   # what a future architecture's resampling might do
        return real(self, *args, **kwargs)

    monkeypatch.setattr(loop.SAETrainer, "step", step)
    with pytest.raises(RuntimeError, match="random numbers"):
        train_many(stream(30), jobs(), progress=False, workers=2)
    train_many(stream(30), jobs()[:2], progress=False, workers=1)   # one at a time, each on its own generator


def test_concurrent_steps_start_the_costliest_sae_first():
    from monosemantic.train.concurrent import ConcurrentSteps

    order = []

    class Fake:   # pure scheduling logic: a trainer reduced to its cost and clock
        def __init__(self, cost):
            self.step_cost, self.elapsed = cost, 0.0

        def step(self, step, x, share, own_rng=True):
            order.append(self.step_cost)

    steps = ConcurrentSteps(1)   # one worker: it runs them in the order handed over
    try:
        steps.step([Fake(c) for c in (1, 8, 2, 4)], 0, torch.zeros(1), 0.0)
    finally:
        steps.close()
    assert order == [8, 4, 2, 1]
