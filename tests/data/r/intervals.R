# Profile and parametric bootstrap confidence intervals as lme4 computes them (issue 12),
# written as tests/data/expected/intervals.json. Run from the repository root:
#   Rscript tests/data/r/intervals.R
# Profile: confint(fit, method = "profile", oldNames = FALSE) at levels 0.95 and 0.8 (one
# profile, two levels), with lme4's warnings. Bootstrap: confint(fit, method = "boot",
# boot.type = "perc", nsim = 1000, oldNames = FALSE) with set.seed(1), and for each row
# the Monte Carlo standard error of each percentile, estimated from lme4's own bootstrap
# distribution (see mc_se below), so that a test can compare another bootstrap's
# percentiles with these within Monte Carlo error; also the bootstrap's wall time. Last,
# boot's percentile interpolation (norm.inter) on two fixed samples.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})

# The Monte Carlo SE of the percentile at probability a of R bootstrap values: the half
# width of the order statistics that bracket it at ±1 binomial SD,
#   (t_(k + m) - t_(k - m)) / 2,   k = (R + 1) a,  m = sqrt(R a (1 - a)),
# a distribution-free estimate (the binomial count of values below the quantile has SD m).
mc_se <- function(t, a) {
  t <- sort(t[is.finite(t)])
  R <- length(t)
  k <- (R + 1) * a
  m <- sqrt(R * a * (1 - a))
  lo <- max(1, floor(k - m)); hi <- min(R, ceiling(k + m))
  # the slope of the order statistics over [lo, hi] times m (lo, hi rounded outwards)
  m * (t[hi] - t[lo]) / (hi - lo)
}

rows_of <- function(ci) lapply(seq_len(nrow(ci)), function(i) list(
  parm = rownames(ci)[i],
  lower = if (is.finite(ci[i, 1])) unname(ci[i, 1]) else NA,
  upper = if (is.finite(ci[i, 2])) unname(ci[i, 2]) else NA))

warnings_of <- function(expr) {
  seen <- character()
  value <- withCallingHandlers(expr, warning = function(w) {
    seen <<- c(seen, conditionMessage(w)); invokeRestart("muffleWarning")})
  list(value = value, warnings = unique(seen))
}

profile_cases <- list(
  list(case = "sleepstudy_reml", dataset = "sleepstudy.csv",
       formula = "Reaction ~ Days + (Days | Subject)", method = "REML"),
  list(case = "mood_lmer_ml", dataset = "mood.csv",
       formula = "Mood ~ Exercise + (1 + Exercise | State)", method = "ML",
       points = "sd_Exercise|State"),
  list(case = "penicillin_crossed", dataset = "penicillin.csv",
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", method = "REML"),
  list(case = "dyestuff2_singular", dataset = "dyestuff2.csv",
       formula = "Yield ~ 1 + (1 | Batch)", method = "REML")
)
out <- list(r_version = R.version.string,
            lme4_version = as.character(packageVersion("lme4")),
            profile = list(), boot = list())
fit_of <- function(spec) {
  d <- read.csv(file.path("tests/data", spec$dataset))
  lmer(as.formula(spec$formula), d, REML = spec$method == "REML")
}
for (spec in profile_cases) {
  fit <- fit_of(spec)
  started <- proc.time()[["elapsed"]]
  prof <- warnings_of(profile(fit, signames = FALSE))
  seconds <- proc.time()[["elapsed"]] - started
  entry <- list(dataset = spec$dataset, formula = spec$formula, method = spec$method,
                warnings = I(prof$warnings), profile_seconds = seconds, confint = list())
  for (level in c(0.95, 0.8)) {
    ci <- warnings_of(confint(prof$value, level = level))
    entry$confint[[format(level)]] <- rows_of(ci$value)
  }
  for (parm in spec$points) {
    # the profile's points (zeta and every parameter at the refit's optimum), to compare
    # refits point by point where the intervals differ
    rows <- prof$value[prof$value$.par == parm, ]
    entry$points[[parm]] <- lapply(seq_len(nrow(rows)), function(i) c(
      list(zeta = rows$.zeta[i]),
      as.list(unlist(rows[i, setdiff(names(rows), c(".zeta", ".par"))]))))
  }
  out$profile[[spec$case]] <- entry
}

boot_spec <- list(case = "sleepstudy_reml", dataset = "sleepstudy.csv",
                  formula = "Reaction ~ Days + (Days | Subject)", method = "REML")
fit <- fit_of(boot_spec)
nsim <- 1000
level <- 0.95
set.seed(1)
started <- proc.time()[["elapsed"]]
vn <- c(lme4:::profnames(fit, FALSE, useSc = TRUE), names(fixef(fit)))
statistic <- function(x) setNames(c(lme4:::Cv_to_Sv(x@theta, n = lengths(x@cnms),
                                                     s = sigma(x)), fixef(x)), vn)
bb <- warnings_of(bootMer(fit, statistic, nsim = nsim))
seconds <- proc.time()[["elapsed"]] - started
ci <- confint(bb$value, level = level, type = "perc")
a <- (1 - level) / 2
rows <- rows_of(ci)
for (i in seq_along(rows)) {
  t <- bb$value$t[, i]
  rows[[i]]$lower_mc_se <- mc_se(t, a)
  rows[[i]]$upper_mc_se <- mc_se(t, 1 - a)
}
out$boot[[boot_spec$case]] <- list(
  dataset = boot_spec$dataset, formula = boot_spec$formula, method = boot_spec$method,
  nsim = nsim, seed = 1, level = level, boot_type = "perc",
  failed = attr(bb$value, "bootFail"), warnings = I(bb$warnings),
  boot_seconds = seconds, seconds_per_refit = seconds / nsim, rows = rows)
# boot's percentile interpolation (norm.inter) on a fixed sample: levels whose ranks
# (R + 1) a are integers and levels that interpolate on the normal quantile scale
sample <- ((1:57) ^ 1.5) / 10
out$percentile <- list(values = sample, levels = list())
for (level in c(0.95, 0.9, 0.5)) {
  a <- (1 - level) / 2
  out$percentile$levels[[format(level)]] <- unname(boot:::norm.inter(sample, c(a, 1 - a))[, 2])
}
sample <- (1:999) / 7
out$percentile_integer_ranks <- list(
  values = sample, bounds = unname(boot:::norm.inter(sample, c(0.025, 0.975))[, 2]))
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, na = "null", pretty = TRUE),
           "tests/data/expected/intervals.json")
