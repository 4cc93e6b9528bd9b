# lme4 1.1-31 / lmerTest 3.1-3 on the data of tests/stats/test_lmm_numerics.py.
# Regenerate from the repository root:
#   python tests/data/r/make_numerics_data.py && Rscript tests/data/r/numerics.R
suppressMessages({library(lmerTest); library(jsonlite)})

summarise <- function(fit) {
  co <- summary(fit)$coefficients
  vc <- as.data.frame(VarCorr(fit))
  list(
    loglik = as.numeric(logLik(fit)),
    fixef = as.list(co[, "Estimate"]), se = as.list(co[, "Std. Error"]),
    df = as.list(co[, "df"]), theta = unname(getME(fit, "theta")),
    sdcor = vc$sdcor, sigma = sigma(fit), singular = isSingular(fit),
    deviance_ml = if (isREML(fit)) deviance(refitML(fit)) else deviance(fit),
    reml_criterion = if (isREML(fit)) unname(REMLcrit(fit)) else NULL,
    df_residual = df.residual(fit),
    messages = as.list(fit@optinfo$conv$lme4$messages))
}

sleep <- read.csv("tests/data/sleepstudy.csv")
shifted <- read.csv("tests/data/shifted.csv")
collinear <- read.csv("tests/data/collinear.csv")
small <- read.csv("tests/data/small45.csv")
out <- list(
  sleepstudy_log_ml = summarise(lmer(log(Reaction) ~ log(Days + 1) + (log(Days + 1) | Subject),
                                     sleep, REML = FALSE)),
  shifted_reml = summarise(lmer(y ~ x + (1 + x | g), shifted)),
  shifted_ml = summarise(lmer(y ~ x + (1 + x | g), shifted, REML = FALSE)),
  collinear_reml = summarise(lmer(y ~ x1 + x2 + (1 | g), collinear)),
  small45_reml = summarise(lmer(y ~ x + (x | g), small)),
  sleepstudy_reml = summarise(lmer(Reaction ~ Days + (Days | Subject), sleep))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           "tests/data/expected/numerics.json")
