# Inference on stored fits, as R computes it (issue 12), written as
# tests/data/expected/inference.json. Run from the repository root:
#   Rscript tests/data/r/inference.R
# Per case: vcov(fit) and its correlation (cov2cor); confint at levels 0.95 and 0.8
# (lm: confint.lm, t-based; lmer: confint(fit, method = "Wald", oldNames = FALSE), whose
# variance-parameter rows are NA); for lm, anova(fit) (sequential, type 1) and car::Anova
# types 2 and 3 (car's default contrasts as fitted: treatment); for lmer, lmerTest's
# anova(fit) (type 3, Satterthwaite) where "anova3" is given.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(car); library(jsonlite)})

matrix_of <- function(v) {
  v <- as.matrix(v)
  list(terms = I(rownames(v)),
       matrix = unname(lapply(seq_len(nrow(v)), function(i) I(unname(v[i, ])))))
}
intervals <- function(fit, level, lmm) {
  ci <- if (lmm) confint(fit, method = "Wald", level = level, oldNames = FALSE)
        else confint(fit, level = level)
  lapply(seq_len(nrow(ci)), function(i) list(
    parm = rownames(ci)[i],
    lower = unname(ci[i, 1]),
    upper = unname(ci[i, 2])))
}
na_null <- function(x) if (is.na(x)) NA else unname(x)
anova_rows <- function(a, type) {
  # anova.lm: Df, Sum Sq, Mean Sq, F value, Pr(>F); car::Anova: Sum Sq, Df, F value, Pr(>F)
  rows <- rownames(a)
  res_df <- a[rows == "Residuals", "Df"]
  lapply(seq_along(rows), function(i) {
    term <- trimws(rows[i])
    ss <- a[i, "Sum Sq"]; df <- a[i, "Df"]
    list(term = term, sum_sq = ss, mean_sq = ss / df, num_df = df,
         den_df = if (term == "Residuals") NA else res_df,
         f_value = na_null(a[i, "F value"]), p_value = na_null(a[i, "Pr(>F)"]))
  })
}
source("tests/data/r/lmertest_tables.R")  # lmertest_anova()

cases <- list(
  list(case = "mood_lm_interaction", dataset = "mood.csv", formula = "Mood ~ Exercise * State"),
  list(case = "mood_lm", dataset = "mood.csv", formula = "Mood ~ Exercise"),
  list(case = "cake_lm", dataset = "cake.csv", formula = "angle ~ recipe * temp"),
  list(case = "aliased_lm", dataset = "aliased.csv", formula = "y ~ x1 + x12 + x2"),
  list(case = "sleepstudy_reml", dataset = "sleepstudy.csv",
       formula = "Reaction ~ Days + (Days | Subject)", method = "REML"),
  list(case = "sleepstudy_ml", dataset = "sleepstudy.csv",
       formula = "Reaction ~ Days + (Days | Subject)", method = "ML"),
  list(case = "sleepstudy_uncorr", dataset = "sleepstudy.csv",
       formula = "Reaction ~ Days + (Days || Subject)", method = "REML"),
  list(case = "oats_nested", dataset = "oats.csv",
       formula = "yield ~ nitro + (1 | Block/Variety)", method = "REML"),
  list(case = "mood_lmer_ml", dataset = "mood.csv",
       formula = "Mood ~ Exercise + (1 + Exercise | State)", method = "ML"),
  list(case = "penicillin_crossed", dataset = "penicillin.csv",
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", method = "REML"),
  list(case = "cake_lmer", dataset = "cake.csv",
       formula = "angle ~ recipe * temp + (1 | recipe:replicate)", method = "REML",
       anova3 = TRUE)
)
out <- list(r_version = R.version.string,
            lme4_version = as.character(packageVersion("lme4")),
            lmerTest_version = as.character(packageVersion("lmerTest")),
            car_version = as.character(packageVersion("car")), cases = list())
for (spec in cases) {
  d <- read.csv(file.path("tests/data", spec$dataset))
  f <- as.formula(spec$formula)
  lmm <- !is.null(spec$method)
  fit <- if (lmm) lmer(f, d, REML = spec$method == "REML") else lm(f, d)
  v <- vcov(fit)
  entry <- list(dataset = spec$dataset, formula = spec$formula,
                method = if (lmm) spec$method else "OLS",
                vcov = matrix_of(v),
                vcov_correlation = matrix_of(if (lmm) cov2cor(as.matrix(v)) else cov2cor(v)),
                confint = list("0.95" = intervals(fit, 0.95, lmm),
                               "0.8" = intervals(fit, 0.8, lmm)))
  if (!lmm && spec$case != "aliased_lm") {
    entry$anova <- list("1" = anova_rows(anova(fit), 1),
                        "2" = anova_rows(Anova(fit, type = 2), 2),
                        "3" = anova_rows(Anova(fit, type = 3), 3))
  }
  if (isTRUE(spec$anova3)) {
    entry$anova_satterthwaite <- list("3" = lmertest_anova(fit, 3, "Satterthwaite"))
  }
  out$cases[[spec$case]] <- entry
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, na = "null", pretty = TRUE),
           "tests/data/expected/inference.json")
