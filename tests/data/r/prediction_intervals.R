# Prediction intervals and covariances as R computes them (issue 12), written as
# tests/data/expected/prediction_intervals.json. Run from the repository root:
#   Rscript tests/data/r/prediction_intervals.R
#
# - lm: predict.lm(fit, newdata, interval = "confidence" / "prediction", level = 0.9 and
#   0.95, se.fit = TRUE), of a model with an aliased column too, and R's predict on each lm of an lmList (each group's own sigma
#   and df).
# - mixed models: cov2cor(vcov(fit)), as.data.frame(VarCorr(fit)) (vcov of the
#   off-diagonal rows is the covariance), ranef(fit, condVar = TRUE)'s postVar arrays,
#   predict(fit, newdata, re.form = ..., allow.new.levels = TRUE) with partial re.form.
# - the mixed-model interval formula of service/stats/prediction_intervals.py, computed
#   here from lme4's ingredients (vcov, sigma, VarCorr, postVar) at lme4's optimum:
#     se_fit^2 = x' V x + sum over included terms with a known level of z' C_level z
#     confidence: fit +- qnorm((1 + level) / 2) se_fit
#     prediction: variance se_fit^2 + sigma^2 + sum over the other terms of z' Sigma z
#   with the ingredients themselves, so a test can check the formula on R's numbers alone.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})

rows_of <- function(m) unname(lapply(seq_len(nrow(m)), function(i) I(unname(m[i, ]))))
read <- function(name, factors) {
  d <- read.csv(file.path("tests/data", name))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}

lm_case <- function(fit, newdata) {
  out <- list(newdata = newdata)
  for (interval in c("confidence", "prediction")) for (level in c(0.9, 0.95)) {
    p <- predict(fit, newdata, interval = interval, level = level, se.fit = TRUE)
    out[[paste(interval, level)]] <- list(
      fit = I(unname(p$fit[, "fit"])), se_fit = I(unname(p$se.fit)),
      lower = I(unname(p$fit[, "lwr"])), upper = I(unname(p$fit[, "upr"])))
  }
  out
}

mood <- read("mood.csv", "State")
sleep <- read("sleepstudy.csv", "Subject")
penicillin <- read("penicillin.csv", c("plate", "sample"))

lm_cases <- list(
  mood_lm = lm_case(lm(Mood ~ Exercise * State, mood),
                    data.frame(Exercise = c(0, 2.5, 4.1, 7.3),
                               State = c("A", "B", "C", "A"))),
  sleepstudy_lm = lm_case(lm(Reaction ~ Days, sleep), data.frame(Days = c(0, 3.5, 9, 12))),
  # x12 = x1 + x2 is aliased: predict.lm uses the estimable columns (and warns)
  aliased_lm = suppressWarnings(lm_case(lm(y ~ x1 + x12 + x2, read("aliased.csv", "g")),
                                        data.frame(x1 = c(2.287, -1.197, 0.5),
                                                   x2 = c(3.363, 2.483, -1),
                                                   x12 = c(5.65, 1.286, -0.5)))))

# lmList: each row predicted by its own group's lm
groups <- lmList(Reaction ~ Days | Subject, sleep)
by_group_new <- data.frame(Days = c(0, 3.5, 9, 4), Subject = c("308", "309", "372", "308"))
by_group <- list(newdata = by_group_new)
for (interval in c("confidence", "prediction")) for (level in c(0.9, 0.95)) {
  parts <- lapply(seq_len(nrow(by_group_new)), function(i) {
    row <- by_group_new[i, , drop = FALSE]
    predict(groups[[row$Subject]], row, interval = interval, level = level, se.fit = TRUE)
  })
  by_group[[paste(interval, level)]] <- list(
    fit = I(sapply(parts, function(p) unname(p$fit[1, "fit"]))),
    se_fit = I(sapply(parts, function(p) unname(p$se.fit))),
    lower = I(sapply(parts, function(p) unname(p$fit[1, "lwr"]))),
    upper = I(sapply(parts, function(p) unname(p$fit[1, "upr"]))))
}
lm_cases$sleepstudy_lmlist <- by_group

varcorr_rows <- function(fit) {
  v <- as.data.frame(VarCorr(fit))
  unname(lapply(seq_len(nrow(v)), function(i) list(
    grp = v$grp[i], var1 = if (is.na(v$var1[i])) NA else v$var1[i],
    var2 = if (is.na(v$var2[i])) NA else v$var2[i], vcov = v$vcov[i], sdcor = v$sdcor[i])))
}
cond_var <- function(fit) {
  re <- ranef(fit, condVar = TRUE)
  # one entry per term, in VarCorr's order (terms of one factor share its postVar array)
  out <- list()
  for (g in names(re)) {
    pv <- attr(re[[g]], "postVar")
    if (is.list(pv)) stop("condVar of a factor with several terms: see ranef's condVarDF")
    out[[length(out) + 1]] <- list(
      group = g, terms = I(colnames(re[[g]])), levels = I(rownames(re[[g]])),
      cond_cov = unname(lapply(seq_len(dim(pv)[3]),
                               function(l) rows_of(pv[, , l, drop = FALSE][, , 1, drop = TRUE]
                                                   |> as.matrix()))))
  }
  out
}

# The interval formula, from lme4's ingredients. `terms`: per random term, its grouping
# factor, the covariate columns (z) of the new rows, whether the prediction includes it.
mixed_intervals <- function(fit, newdata, included) {
  X <- model.matrix(delete.response(terms(fit)), newdata)
  V <- as.matrix(vcov(fit))
  s <- sigma(fit)
  vc <- VarCorr(fit)
  re <- ranef(fit, condVar = TRUE)
  fit_var <- rowSums((X %*% V) * X)
  new_var <- rep(0, nrow(newdata))
  bars <- findbars(formula(fit))
  for (bar in bars) {
    g <- deparse(bar[[3]])
    Z <- model.matrix(as.formula(paste("~", deparse(bar[[2]]))), newdata)
    Sigma <- as.matrix(vc[[g]])
    pv <- attr(re[[g]], "postVar")
    level <- as.character(newdata[[g]])
    for (i in seq_len(nrow(newdata))) {
      z <- Z[i, ]
      l <- match(level[i], rownames(re[[g]]))
      if (g %in% included && !is.na(l)) {
        C <- as.matrix(pv[, , l])
        fit_var[i] <- fit_var[i] + drop(t(z) %*% C %*% z)
      } else {
        new_var[i] <- new_var[i] + drop(t(z) %*% Sigma %*% z)
      }
    }
  }
  re_form <- if (length(included)) as.formula(paste("~", paste0("(1 | ", included, ")",
                                                                collapse = " + ")))
             else NA
  if (length(included) == length(bars)) re_form <- NULL
  pred <- predict(fit, newdata, re.form = re_form, allow.new.levels = TRUE)
  out <- list(newdata = newdata, included = I(included), fit = I(unname(pred)),
              se_fit = I(unname(sqrt(fit_var))))
  for (level in c(0.9, 0.95)) {
    q <- qnorm((1 + level) / 2)
    half_c <- q * sqrt(fit_var)
    half_p <- q * sqrt(fit_var + s^2 + new_var)
    out[[paste("confidence", level)]] <- list(lower = I(unname(pred - half_c)),
                                              upper = I(unname(pred + half_c)))
    out[[paste("prediction", level)]] <- list(lower = I(unname(pred - half_p)),
                                              upper = I(unname(pred + half_p)))
  }
  out
}

mixed_case <- function(fit, intervals) {
  v <- as.matrix(vcov(fit))
  list(formula = deparse(formula(fit)), method = if (isREML(fit)) "REML" else "ML",
       fixef = as.list(fixef(fit)), sigma = sigma(fit),
       vcov = list(terms = I(rownames(v)), matrix = rows_of(v)),
       vcov_correlation = rows_of(cov2cor(v)),
       varcorr = varcorr_rows(fit), cond_var = cond_var(fit), intervals = intervals)
}

sleep_fit <- lmer(Reaction ~ Days + (Days | Subject), sleep)
sleep_new <- data.frame(Days = c(0, 3.5, 9, 4), Subject = c("308", "309", "372", "999"))
pen_fit <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), penicillin)
pen_new <- data.frame(plate = c("a", "b", "zz", "x"), sample = c("A", "C", "F", "Q"))
uncorr_fit <- lmer(Reaction ~ Days + (Days || Subject), sleep)

mixed <- list(
  sleepstudy_reml = mixed_case(sleep_fit, list(
    all = mixed_intervals(sleep_fit, sleep_new, "Subject"),
    population = mixed_intervals(sleep_fit, sleep_new, character(0)))),
  penicillin_crossed = mixed_case(pen_fit, list(
    all = mixed_intervals(pen_fit, pen_new, c("plate", "sample")),
    plate = mixed_intervals(pen_fit, pen_new, "plate"),
    sample = mixed_intervals(pen_fit, pen_new, "sample"),
    population = mixed_intervals(pen_fit, pen_new, character(0)))))
# (Days || Subject): two terms of one factor; its postVar is per term
mixed$sleepstudy_uncorr <- list(
  formula = deparse(formula(uncorr_fit)), varcorr = varcorr_rows(uncorr_fit),
  cond_var = lapply(ranef(uncorr_fit, condVar = TRUE) |> as.data.frame() |>
                      split(~ term) , function(d) list(term = as.character(d$term[1]),
                                                      levels = I(as.character(d$grp)),
                                                      cond_sd = I(d$condsd))))

out <- list(r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
            lm = lm_cases, mixed = mixed)
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, na = "null", pretty = TRUE),
           "tests/data/expected/prediction_intervals.json")
