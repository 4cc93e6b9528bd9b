# lmerTest's anova tables and ranova for mixed models, as R computes them (issue 12),
# written as tests/data/expected/lmm_anova.json. Run from the repository root:
#   Rscript tests/data/r/lmm_anova.R
# Per case: anova(fit, type = 1, 2, 3) with ddf = "Satterthwaite" and, for REML fits,
# "Kenward-Roger" (lmerTest calls pbkrtest::KRmodcomp; it refuses ML fits); where "ranova"
# is set, ranova(fit) (each random-effects term reduced, REML fits compared by REML LRT).
# The data are read from tests/data, so R and the tests fit the same rows; lme4's optimum
# (theta, beta, sigma) is written too, for tests of the tables at that very point.
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(pbkrtest); library(jsonlite)})

source("tests/data/r/lmertest_tables.R")  # lmertest_anova()
ranova_rows <- function(fit) {
  a <- ranova(fit)
  lapply(seq_len(nrow(a)), function(i) list(
    term = rownames(a)[i], npar = a[i, "npar"], logLik = a[i, "logLik"],
    AIC = a[i, "AIC"], LRT = a[i, "LRT"], Df = a[i, "Df"], p_value = a[i, "Pr(>Chisq)"]))
}

cases <- list(
  list(case = "sleepstudy_reml", dataset = "sleepstudy.csv",
       formula = "Reaction ~ Days + (Days | Subject)", method = "REML", ranova = TRUE),
  list(case = "sleepstudy_ml", dataset = "sleepstudy.csv",
       formula = "Reaction ~ Days + (Days | Subject)", method = "ML", ranova = TRUE),
  list(case = "cake_reml", dataset = "cake.csv",
       formula = "angle ~ recipe * temp + (1 | recipe:replicate)", method = "REML",
       ranova = TRUE),
  list(case = "cake_ml", dataset = "cake.csv",
       formula = "angle ~ recipe * temp + (1 | recipe:replicate)", method = "ML"),
  list(case = "orthodont_reml", dataset = "orthodont.csv",
       formula = "distance ~ age * Sex + (age | Subject)", method = "REML"),
  list(case = "sleepstudy_two_terms", dataset = "sleepstudy.csv",
       formula = "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", method = "REML",
       ranova = TRUE),
  # an unbalanced factorial (the first 7 rows left out), where types 1, 2 and 3 differ
  list(case = "oats_factorial_unbalanced", dataset = "oats.csv", skip_rows = 7,
       formula = "yield ~ factor(nitro) * Variety + (1 | Block)", method = "REML"),
  # an aliased column (x12 = x1 + x2 drops x2): lmerTest's NA row for its term
  list(case = "aliased_reml", dataset = "aliased.csv",
       formula = "y ~ x1 + x12 + x2 + (1 | g)", method = "REML"),
  # a poly() basis (a matrix to R, so not "numeric" in lmerTest's containment) and two
  # aliased columns
  list(case = "orthodont_poly", dataset = "orthodont.csv",
       formula = "distance ~ poly(age, 2) * Sex + I(age^2):Sex + (1 | Subject)",
       method = "REML"),
  list(case = "penicillin_crossed", dataset = "penicillin.csv",
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", method = "REML", ranova = TRUE)
)
out <- list(r_version = R.version.string,
            lme4_version = as.character(packageVersion("lme4")),
            lmerTest_version = as.character(packageVersion("lmerTest")),
            pbkrtest_version = as.character(packageVersion("pbkrtest")), cases = list())
for (spec in cases) {
  d <- read.csv(file.path("tests/data", spec$dataset))
  skip <- if (is.null(spec$skip_rows)) 0L else spec$skip_rows
  if (skip > 0) d <- d[-seq_len(skip), ]
  fit <- lmer(as.formula(spec$formula), d, REML = spec$method == "REML")
  # lme4's optimum, so that the tests can check the tables at the same point
  entry <- list(dataset = spec$dataset, skip_rows = skip, formula = spec$formula,
                method = spec$method,
                theta = I(unname(getME(fit, "theta"))), beta = I(unname(fixef(fit))),
                sigma = sigma(fit), anova = list())
  ddfs <- if (spec$method == "REML") c("Satterthwaite", "Kenward-Roger") else "Satterthwaite"
  for (ddf in ddfs) {
    entry$anova[[ddf]] <- list("1" = lmertest_anova(fit, 1, ddf),
                               "2" = lmertest_anova(fit, 2, ddf),
                               "3" = lmertest_anova(fit, 3, ddf))
  }
  if (isTRUE(spec$ranova)) entry$ranova <- ranova_rows(fit)
  out$cases[[spec$case]] <- entry
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           "tests/data/expected/lmm_anova.json")
