# R's anova(lm1, lm2, ...) on least squares fits: the F test table (Res.Df, RSS, Df,
# Sum of Sq, F, Pr(>F)), rows in the order the models are given, written as
# tests/data/expected/compare_mood_lm_f.json. Run from the repository root:
#   Rscript tests/data/r/compare_lm_f.R
suppressPackageStartupMessages(library(jsonlite))
mood <- read.csv("tests/data/mood.csv")
fits <- list(
  mood_lm = lm(Mood ~ Exercise, mood),
  mood_lm_state = lm(Mood ~ Exercise + State, mood),
  mood_lm_interaction = lm(Mood ~ Exercise * State, mood))
formulas <- sapply(fits, function(f) deparse(formula(f)))

table_of <- function(names) {
  a <- do.call(anova, unname(fits[names]))
  lapply(seq_along(names), function(i) list(
    model = names[i], res_df = a$Res.Df[i], rss = a$RSS[i],
    df = if (is.na(a$Df[i])) NULL else a$Df[i],
    sum_of_sq = if (is.na(a$`Sum of Sq`[i])) NULL else a$`Sum of Sq`[i],
    f = if (is.na(a$F[i])) NULL else a$F[i],
    p_value = if (is.na(a$`Pr(>F)`[i])) NULL else a$`Pr(>F)`[i]))
}
out <- list(
  r_version = R.version.string,
  formulas = as.list(formulas),
  loglik = lapply(fits, function(f) as.numeric(logLik(f))),
  # two models, smaller first; the same two given the other way round (R keeps the order
  # and reports negative Df and Sum of Sq); three nested models (each row against the one
  # before, every F against the largest model's residual mean square)
  two = table_of(c("mood_lm", "mood_lm_state")),
  reversed = table_of(c("mood_lm_state", "mood_lm")),
  three = table_of(c("mood_lm", "mood_lm_state", "mood_lm_interaction"))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), null = "null", pretty = TRUE),
           "tests/data/expected/compare_mood_lm_f.json")
