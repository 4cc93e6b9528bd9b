# Contrasts, offsets and prior weights in lm, lmer and lmList, as R computes them (issue 12),
# written as tests/data/expected/weights_offsets_contrasts.json. Run from the repository root:
#   Rscript tests/data/r/weights_offsets_contrasts.R
# The data are read from tests/data; the only derived column is sleepstudy's prior weight
# w = 1 + (Days %% 3) / 2 (1, 1.5, 2), which the tests derive the same way.
# Per case: the coefficients (estimate, SE), sigma, logLik, AIC, BIC, the variance
# components of mixed models, predictions for a few new rows (with their offset), per-group
# coefficients of lmList fits and, where "anova" is set, lmerTest's anova tables (where
# "profile" is, lme4's profile intervals).
suppressPackageStartupMessages({
  library(lme4); library(lmerTest); library(car); library(jsonlite)})

source("tests/data/r/lmertest_tables.R")  # lmertest_anova()

read_data <- function(name) {
  d <- read.csv(file.path("tests/data", name))
  if (name == "sleepstudy.csv") d$w <- 1 + (d$Days %% 3) / 2
  d
}
coefs <- function(fit) {
  s <- coef(summary(fit))
  lapply(seq_len(nrow(s)), function(i) list(
    term = rownames(s)[i], estimate = s[i, 1], std_error = s[i, 2]))
}
varcorr <- function(fit) {
  v <- as.data.frame(VarCorr(fit))
  v <- v[is.na(v$var2), ]
  lapply(seq_len(nrow(v)), function(i) list(
    group = v$grp[i], term = if (is.na(v$var1[i])) NA else v$var1[i], sd = v$sdcor[i]))
}
newdata <- list(
  sleepstudy.csv = data.frame(Days = c(0, 3.5, 12), Subject = c(308, 350, 999),
                              w = c(1, 1, 1)),
  cake.csv = data.frame(recipe = c("A", "B", "C"), temp = c(175, 205, 225),
                        replicate = c(1, 7, 99)))

cases <- list(
  # contrasts of the fixed part
  # car::Anova type 3 tests the model's own coefficients: with sum contrasts, the usual
  # type 3 table (with treatment coding it is another one)
  list(case = "cake_lm_sum_poly", dataset = "cake.csv", kind = "lm",
       formula = "angle ~ recipe * factor(temp)",
       contrasts = list(recipe = "contr.sum", temp = "contr.poly"), car = TRUE),
  list(case = "cake_lm_helmert", dataset = "cake.csv", kind = "lm",
       formula = "angle ~ recipe + temp", contrasts = list(recipe = "contr.helmert")),
  list(case = "cake_lm_sas", dataset = "cake.csv", kind = "lm",
       formula = "angle ~ recipe + temp", contrasts = list(recipe = "contr.SAS")),
  list(case = "cake_lmer_sum_poly", dataset = "cake.csv", kind = "lmer", method = "REML",
       formula = "angle ~ recipe * factor(temp) + (1 | recipe:replicate)",
       contrasts = list(recipe = "contr.sum", temp = "contr.poly"), anova = TRUE),
  list(case = "cake_lmer_sum", dataset = "cake.csv", kind = "lmer", method = "REML",
       formula = "angle ~ recipe * temp + (1 | recipe:replicate)",
       contrasts = list(recipe = "contr.sum"), anova = TRUE),
  # profile intervals of a sum-coded model: its own coefficients are profiled
  list(case = "cake_lmer_sum_profile", dataset = "cake.csv", kind = "lmer", method = "REML",
       formula = "angle ~ recipe + temp + (1 | replicate)",
       contrasts = list(recipe = "contr.sum"), profile = TRUE),
  list(case = "cake_lmer_helmert_ml", dataset = "cake.csv", kind = "lmer", method = "ML",
       formula = "angle ~ recipe + temp + (1 | replicate)",
       contrasts = list(recipe = "contr.helmert")),
  # a factor in a random-effects term: lme4 codes the random part by treatment contrasts
  # whatever the contrasts argument says (it applies to the fixed-effects matrix only)
  list(case = "orthodont_sex_sum_random", dataset = "orthodont.csv", kind = "lmer",
       method = "REML", formula = "distance ~ age + Sex + (1 + Sex | Subject)",
       contrasts = list(Sex = "contr.sum"), names_only = TRUE),
  list(case = "cake_lmlist_sum", dataset = "cake.csv", kind = "lmList",
       formula = "angle ~ recipe | replicate", contrasts = list(recipe = "contr.sum")),
  # offsets
  list(case = "sleepstudy_lm_offset", dataset = "sleepstudy.csv", kind = "lm",
       formula = "Reaction ~ Days + offset(Days)"),
  list(case = "sleepstudy_lm_offset_log", dataset = "sleepstudy.csv", kind = "lm",
       formula = "Reaction ~ Days + offset(log(Days + 1))"),
  list(case = "sleepstudy_lmer_offset", dataset = "sleepstudy.csv", kind = "lmer",
       method = "REML", formula = "Reaction ~ Days + offset(Days) + (Days | Subject)"),
  list(case = "sleepstudy_lmer_offset_log_ml", dataset = "sleepstudy.csv", kind = "lmer",
       method = "ML", formula = "Reaction ~ Days + offset(log(Days + 1)) + (Days | Subject)"),
  list(case = "sleepstudy_lmlist_offset", dataset = "sleepstudy.csv", kind = "lmList",
       formula = "Reaction ~ Days + offset(log(Days + 1)) | Subject"),
  # prior weights
  list(case = "sleepstudy_lm_weights", dataset = "sleepstudy.csv", kind = "lm",
       formula = "Reaction ~ Days", weights = "w"),
  list(case = "sleepstudy_lmer_weights", dataset = "sleepstudy.csv", kind = "lmer",
       method = "REML", formula = "Reaction ~ Days + (Days | Subject)", weights = "w",
       anova = TRUE, ranova = TRUE, kr = TRUE, profile = TRUE),
  list(case = "sleepstudy_lmer_weights_ml", dataset = "sleepstudy.csv", kind = "lmer",
       method = "ML", formula = "Reaction ~ Days + (Days | Subject)", weights = "w"),
  list(case = "sleepstudy_lmlist_weights", dataset = "sleepstudy.csv", kind = "lmList",
       formula = "Reaction ~ Days | Subject", weights = "w")
)

fit_case <- function(spec, d) {
  form <- as.formula(spec$formula)
  contr <- spec$contrasts
  # R names a factor() variable's contrasts after the call, as the model frame does
  if (!is.null(contr) && grepl("factor(temp)", spec$formula, fixed = TRUE))
    names(contr)[names(contr) == "temp"] <- "factor(temp)"
  w <- if (is.null(spec$weights)) NULL else d[[spec$weights]]
  d$.w <- w
  if (spec$kind == "lm") {
    if (is.null(w)) lm(form, d, contrasts = contr) else lm(form, d, weights = .w,
                                                           contrasts = contr)
  } else if (spec$kind == "lmer") {
    if (is.null(w)) lmer(form, d, REML = spec$method == "REML", contrasts = contr)
    else lmer(form, d, REML = spec$method == "REML", weights = .w, contrasts = contr)
  } else {
    if (is.null(w)) lmList(form, d, contrasts = contr, pool = TRUE)
    else lmList(form, d, weights = .w, pool = TRUE)
  }
}

out <- list(r_version = R.version.string,
            lme4_version = as.character(packageVersion("lme4")),
            lmerTest_version = as.character(packageVersion("lmerTest")), cases = list())
for (spec in cases) {
  d <- read_data(spec$dataset)
  fit <- fit_case(spec, d)
  entry <- list(dataset = spec$dataset, kind = spec$kind, formula = spec$formula,
                method = if (is.null(spec$method)) NA else spec$method,
                contrasts = if (is.null(spec$contrasts)) NA else spec$contrasts,
                weights = if (is.null(spec$weights)) NA else spec$weights)
  if (spec$kind == "lmList") {
    cf <- coef(fit)
    entry$groups <- lapply(seq_len(nrow(cf)), function(i) list(
      level = rownames(cf)[i], terms = colnames(cf), estimates = unname(unlist(cf[i, ]))))
    entry$pooled_sigma <- summary(fit)$RSE
  } else if (isTRUE(spec$names_only)) {
    entry$fixed_names <- names(fixef(fit))
    entry$random_names <- colnames(ranef(fit)[[1]])
  } else {
    entry$coefficients <- coefs(fit)
    entry$sigma <- sigma(fit)
    ll <- logLik(fit)
    entry$loglik <- as.numeric(ll)
    entry$aic <- AIC(fit)
    entry$bic <- BIC(fit)
    entry$df_residual <- df.residual(fit)
    entry$n_obs <- nobs(fit)
    if (spec$kind == "lmer") {
      entry$varcorr <- varcorr(fit)
      entry$theta <- I(unname(getME(fit, "theta")))
      if (spec$method == "REML") entry$reml_criterion <- unname(REMLcrit(fit))
    }
    nd <- newdata[[spec$dataset]]
    entry$newdata <- nd
    entry$predictions <- I(unname(if (spec$kind == "lmer")
      predict(fit, newdata = nd, allow.new.levels = TRUE) else predict(fit, newdata = nd)))
    if (spec$kind == "lmer")
      entry$population_predictions <- I(unname(predict(fit, newdata = nd, re.form = NA)))
    entry$fitted_head <- I(unname(head(fitted(fit), 5)))
    entry$residuals_head <- I(unname(head(residuals(fit), 5)))
  }
  if (isTRUE(spec$profile)) {
    ci <- suppressMessages(confint(fit, method = "profile", oldNames = FALSE))
    entry$profile <- lapply(seq_len(nrow(ci)), function(i) list(
      parm = rownames(ci)[i], lower = ci[i, 1], upper = ci[i, 2]))
  }
  if (isTRUE(spec$anova)) {
    entry$anova <- list("1" = lmertest_anova(fit, 1, "Satterthwaite"),
                        "3" = lmertest_anova(fit, 3, "Satterthwaite"))
  }
  if (isTRUE(spec$kr)) entry$anova_kr <- lmertest_anova(fit, 3, "Kenward-Roger")
  if (isTRUE(spec$ranova)) {
    a <- ranova(fit)
    entry$ranova <- lapply(seq_len(nrow(a)), function(i) list(
      term = rownames(a)[i], logLik = a[i, "logLik"], LRT = a[i, "LRT"]))
  }
  if (isTRUE(spec$car)) {
    a <- car::Anova(fit, type = 3)
    entry$car3 <- lapply(seq_len(nrow(a)), function(i) list(
      term = trimws(rownames(a)[i]), sum_sq = a[i, "Sum Sq"], num_df = a[i, "Df"],
      f_value = if (is.na(a[i, "F value"])) NA else a[i, "F value"]))
  }
  out$cases[[spec$case]] <- entry
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           "tests/data/expected/weights_offsets_contrasts.json")
