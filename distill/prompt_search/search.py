"""The closed loop: Optuna proposes class prompts, the quick teacher scores them on held-out images.

One Optuna study per search, in SQLite in the out folder (``study.db``): a killed search resumes
where it stopped (finished and pruned trials are kept and not repeated; the trial the kill cut
short is marked failed and its place taken by a new one), and ``optuna-dashboard sqlite:///DIR/study.db``
opens it. TPE samples each class's template and words; successive halving stops trials whose
intermediate held-out mIoU trails the others'. Every trial records its texts and the
orthogonality of its class vectors, the data for "does orthogonality predict a better teacher?".
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import optuna
from pydantic import BaseModel, Field

from distill.prompt_search.feature_bank import FeatureBank
from distill.prompt_search.quick_teacher import QuickTeacherSettings, train_quick_teacher
from distill.prompt_search.space import TEMPLATES, ClassChoices, texts_of
from prompt_kit.bounds import STRICT, Seed, real
from prompt_kit.embedding_cache import EmbeddingCache
from prompt_kit.encoders import TextEncoder, class_vectors
from prompt_kit.orthogonality import cos_sim, max_offdiag, mean_offdiag
from prompt_kit.styles import WORDS_PER_PROMPT

STUDY_NAME = "prompt_search"
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class SearchSettings(BaseModel):
    """How long a search runs and how each trial is scored."""

    model_config = STRICT

    trials: int = Field(default=50, ge=1, le=100_000, description="finished trials the search ends at")
    budget_minutes: real(0, 10_000, low_open=True) | None = Field(
        default=None, description="stop starting trials after this many minutes (None: only the trial count)"
    )
    seed: Seed = Field(default=0, description="the sampler's seed and the quick teacher's: the same for every trial")
    quick_teacher: QuickTeacherSettings = Field(default_factory=QuickTeacherSettings)


def suggest_params(trial: optuna.Trial, space: list[ClassChoices]) -> dict[str, object]:
    """A trial's choice per class: a template, and for ``words`` one pool word per slot."""
    params: dict[str, object] = {}
    for choices in space:
        template = trial.suggest_categorical(f"{choices.name}.template", TEMPLATES)
        params[f"{choices.name}.template"] = template
        if template == "words":
            for k in range(WORDS_PER_PROMPT):
                params[f"{choices.name}.word{k}"] = trial.suggest_categorical(f"{choices.name}.word{k}", choices.pool)
    return params


def _sampler(seed: int) -> optuna.samplers.TPESampler:
    """TPE over the classes' choices jointly; ``group`` splits the space by which classes chose words."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # experimental in optuna
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=10, multivariate=True, group=True)


def open_study(out: Path, seed: int) -> optuna.Study:
    """The folder's study (created on the first call); trials a kill left running are marked failed."""
    out.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}")
    study = optuna.create_study(
        study_name=STUDY_NAME,
        storage=storage,
        direction="maximize",
        sampler=_sampler(seed),
        pruner=optuna.pruners.SuccessiveHalvingPruner(),
        load_if_exists=True,
    )
    study_id = storage.get_study_id_from_name(STUDY_NAME)
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    return study


def run_search(
    space: list[ClassChoices],
    train: FeatureBank,
    evaluation: FeatureBank,
    encoder: TextEncoder,
    out: str | Path,
    settings: SearchSettings,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
    after_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> optuna.Study:
    """Run trials until ``settings.trials`` have finished (or the budget is spent); returns the study.

    The sampler is seeded, but a resumed search samples anew from what its study holds, so a
    resumed search is not trial-for-trial the uninterrupted one: it keeps every finished trial and
    runs only the missing ones.
    """
    study = open_study(Path(out), settings.seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial: optuna.Trial) -> float:
        texts = texts_of(space, suggest_params(trial, space))
        vectors = class_vectors([[text] for text in texts], encoder, cache)
        similarity = cos_sim(vectors, vectors)
        trial.set_user_attr("texts", texts)
        trial.set_user_attr("max_cos", max_offdiag(similarity))
        trial.set_user_attr("mean_cos", mean_offdiag(similarity))

        def report(step: int, miou: float) -> None:
            trial.report(miou, step)
            if trial.should_prune():
                trial.set_user_attr("steps", step)
                raise optuna.TrialPruned()

        result = train_quick_teacher(train, evaluation, vectors, settings.quick_teacher, settings.seed, report=report)
        trial.set_user_attr("steps", settings.quick_teacher.steps)
        trial.set_user_attr("per_class_iou", result.per_class_iou)
        return result.miou

    finished = sum(trial.state in FINISHED for trial in study.get_trials(deepcopy=False))
    left = settings.trials - finished
    if left > 0:
        callbacks = [] if after_trial is None else [lambda _study, trial: after_trial(trial)]
        study.optimize(
            objective,
            n_trials=left,
            timeout=None if settings.budget_minutes is None else settings.budget_minutes * 60,
            callbacks=callbacks,
            show_progress_bar=progress,
            catch=(),
        )
    return study


__all__ = ["STUDY_NAME", "SearchSettings", "open_study", "run_search", "suggest_params"]
