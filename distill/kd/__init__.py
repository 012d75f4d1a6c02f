"""Knowledge distillation as data: KD losses, the terms that pair a student and a teacher output, and
where the teacher's outputs come from (live, a whole-image cache, or the view bank)."""
