# lme4's and lmerTest's answers for every case of the differential test suite.
#
# Regenerate everything from the repository root with
#
#     python tests/differential/generate.py && Rscript tests/differential/reference.R
#
# (Rscript tests/differential/reference.R <id> ... redoes only the named cases.)
# generate.py writes the manifest tests/differential/cases.json and the synthetic data;
# this script exports the data sets that R ships (tests/differential/data/r_<name>.csv.gz),
# then fits every case with plain lme4::lmer (default lmerControl(), REML or ML as the
# manifest says) and writes tests/differential/expected/<id>.json.
#
# Reading the CSVs, which the Python side reads the same way (pandas.read_csv):
# - "NA" is a missing value (the only NA string in these files);
# - text columns become factors (stringsAsFactors = TRUE) with levels in C collation, which
#   is Python's sorted() order; logical columns (TRUE/FALSE) stay logical;
# - numeric columns stay numeric, including numeric grouping columns: lme4 turns every
#   variable of a grouping expression into a factor (factor(x), levels sorted numerically,
#   labelled by as.character: 3, 0.75, -2), as the service labels them;
# - column names are kept as written (check.names = FALSE).
# The exported R data sets are written with write.csv (factors as their labels), so a
# factor whose labels are numbers (sleepstudy's Subject, cake's temperature) is read back as
# numbers: a formula that needs it as a factor says factor(...).
#
# Recorded for each case: logLik, REML criterion (REML fits), deviance (ML fits:
# deviance(fit); REML fits: deviance(refitML(fit)), and deviance(fit, REML = FALSE) at the
# REML estimates), AIC, BIC, fixef names and values, standard errors, Satterthwaite df and
# p-values (lmerTest's summary), as.data.frame(VarCorr(fit)) in lme4's order, sigma, theta
# with getME's names, conditional modes and condVar SDs per grouping factor, term and level
# (all levels, or an evenly spaced subset of 300 for larger factors), fitted values and
# population predictions for up to 8 rows, predict() on those rows as new data (seen
# levels) and with the grouping columns set to unseen levels (allow.new.levels = TRUE),
# isSingular(fit), the convergence messages (fit@optinfo$conv$lme4$messages and the
# optimizer's warnings) and every warning and message lmer() emitted, nobs, df.residual,
# ngrps. A case lme4 refuses records the error message instead.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(jsonlite)
})
invisible(Sys.setlocale("LC_COLLATE", "C"))

script_dir <- function() {
  arg <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(arg)) dirname(normalizePath(sub("^--file=", "", arg[[1]]))) else getwd()
}
HERE <- script_dir()
MAX_LEVELS <- 300L
N_PREDICT <- 8L

manifest <- fromJSON(file.path(HERE, "cases.json"), simplifyVector = FALSE)
only <- commandArgs(trailingOnly = TRUE)
cases <- manifest$cases
if (length(only)) cases <- Filter(function(c) c$id %in% only, cases)
dir.create(file.path(HERE, "expected"), showWarnings = FALSE)

# ---------------------------------------------------------------------------------------
# export the data sets R ships

export_dataset <- function(spec, columns, path) {
  parts <- strsplit(spec, "::", fixed = TRUE)[[1]]
  env <- new.env()
  utils::data(list = parts[[2]], package = parts[[1]], envir = env)
  data <- get(parts[[2]], envir = env)
  data <- as.data.frame(data)[, unlist(columns), drop = FALSE]
  for (name in names(data)) {
    if (is.factor(data[[name]])) data[[name]] <- as.character(data[[name]])
  }
  con <- gzfile(path, "wb", compression = 9)
  on.exit(close(con))
  write.csv(data, con, row.names = FALSE, na = "NA")
}

exported <- character()
for (case in manifest$cases) {
  if (!is.null(case$r_dataset) && !(case$data %in% exported)) {
    wanted <- any(vapply(cases, function(c) identical(c$data, case$data), logical(1)))
    if (wanted) {
      export_dataset(case$r_dataset, case$columns, file.path(HERE, case$data))
      exported <- c(exported, case$data)
    }
  }
}

read_case_data <- function(path) {
  read.csv(path, stringsAsFactors = TRUE, check.names = FALSE, na.strings = "NA")
}

# ---------------------------------------------------------------------------------------
# what lme4 says

num <- function(x) {
  x <- as.numeric(x)
  I(ifelse(is.finite(x), x, NA))
}

ranef_table <- function(fit) {
  re <- as.data.frame(ranef(fit, condVar = TRUE))
  out <- list()
  for (key in unique(paste(re$grpvar, re$term, sep = "\r"))) {
    rows <- re[paste(re$grpvar, re$term, sep = "\r") == key, ]
    n <- nrow(rows)
    keep <- if (n > MAX_LEVELS) unique(c(round(seq(1, n, length.out = MAX_LEVELS)), n)) else seq_len(n)
    out[[length(out) + 1]] <- list(
      group = as.character(rows$grpvar[[1]]), term = as.character(rows$term[[1]]),
      n_levels = n, levels = I(as.character(rows$grp[keep])),
      mode = num(rows$condval[keep]), condsd = num(rows$condsd[keep]))
  }
  out
}

grouping_columns <- function(fit) {
  bars <- lme4::findbars(formula(fit))
  unique(unlist(lapply(bars, function(b) all.vars(b[[3]]))))
}

unseen_value <- function(column) {
  if (is.logical(column)) return(NULL)
  if (is.numeric(column)) {
    value <- 999999
    while (value %in% column) value <- value * 10 + 9
    return(value)
  }
  "zz_unseen"
}

predictions <- function(fit, data) {
  kept <- as.integer(names(fitted(fit)))
  idx <- unique(kept[round(seq(1, length(kept), length.out = min(N_PREDICT, length(kept))))])
  key <- as.character(idx)
  out <- list(rows = I(idx - 1L), fitted = num(fitted(fit)[key]),
              population = num(predict(fit, re.form = NA)[key]))
  nd <- data[idx, , drop = FALSE]
  out$newdata_seen <- tryCatch(num(predict(fit, newdata = nd)),
                               error = function(e) list(error = conditionMessage(e)))
  groups <- grouping_columns(fit)
  fixed_vars <- all.vars(lme4::nobars(formula(fit))[[3]])
  replace <- list()
  for (g in groups) replace[[g]] <- unseen_value(data[[g]])
  if (length(intersect(groups, fixed_vars)) || length(replace) < length(groups)) {
    out$newdata_unseen <- NULL
  } else {
    for (g in groups) nd[[g]] <- rep(replace[[g]], nrow(nd))
    values <- tryCatch(num(predict(fit, newdata = nd, allow.new.levels = TRUE)),
                       error = function(e) list(error = conditionMessage(e)))
    out$newdata_unseen <- list(replace = replace, values = values)
  }
  out
}

satterthwaite <- function(f, data, reml, fit) {
  # lmerTest re-evaluates the lmer() call, lme4::lmer(formula = f, data = data, REML = reml,
  # devFunOnly = TRUE), in its caller's frame: this one, which holds f, data and reml
  w <- character()
  lt <- withCallingHandlers(
    tryCatch(lmerTest::as_lmerModLmerTest(fit), error = function(e) e),
    warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") },
    message = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleMessage") })
  if (inherits(lt, "error")) return(list(error = conditionMessage(lt), warnings = I(w)))
  co <- tryCatch(summary(lt, ddf = "Satterthwaite")$coefficients, error = function(e) e)
  if (inherits(co, "error")) return(list(error = conditionMessage(co), warnings = I(w)))
  list(df = num(co[, "df"]), p_value = num(co[, "Pr(>|t|)"]), warnings = I(w))
}

fit_case <- function(case) {
  data <- read_case_data(file.path(HERE, case$data))
  f <- as.formula(case$formula)
  reml <- identical(case$method, "REML")
  warnings <- character()
  messages <- character()
  fit <- withCallingHandlers(
    tryCatch(lme4::lmer(formula = f, data = data, REML = reml), error = function(e) e),
    warning = function(w) {
      warnings <<- c(warnings, conditionMessage(w)); invokeRestart("muffleWarning")
    },
    message = function(m) {
      messages <<- c(messages, conditionMessage(m)); invokeRestart("muffleMessage")
    })
  out <- list(id = case$id, formula = case$formula, method = case$method,
              source = case$source, data = case$data,
              r_version = R.version.string,
              lme4_version = as.character(packageVersion("lme4")),
              lmerTest_version = as.character(packageVersion("lmerTest")),
              n_rows = nrow(data), warnings = I(warnings), messages = I(messages))
  if (inherits(fit, "error")) {
    out$error <- conditionMessage(fit)
    return(out)
  }
  ll <- logLik(fit)
  out$n_obs <- nobs(fit)
  out$df_residual <- df.residual(fit)
  out$npar <- attr(ll, "df")
  out$loglik <- as.numeric(ll)
  out$aic <- AIC(fit)
  out$bic <- BIC(fit)
  if (reml) {
    out$reml_criterion <- REMLcrit(fit)
    out$deviance <- deviance(refitML(fit))
    out$deviance_at_reml_estimates <- deviance(fit, REML = FALSE)
  } else {
    out$deviance <- deviance(fit)
  }
  beta <- fixef(fit)
  out$fixef_names <- I(names(beta))
  out$fixef <- num(beta)
  out$se <- num(sqrt(diag(as.matrix(vcov(fit)))))
  out$satterthwaite <- satterthwaite(f, data, reml, fit)
  # lmerTest drops Hessian eigenvalues below 1e-8 in the data's units, so for a response
  # of SD 1e6 or 1e-6 its df are wrong (the df do not depend on the response's units):
  # for such a response, lmerTest's df on the response divided by its SD are the reference
  y_sd <- sd(model.response(model.frame(fit)))
  if (is.name(f[[2]]) && (y_sd > 100 || y_sd < 0.01)) {
    unit <- data
    unit[[as.character(f[[2]])]] <- unit[[as.character(f[[2]])]] / y_sd
    fit_unit <- suppressMessages(suppressWarnings(
      lme4::lmer(formula = f, data = unit, REML = reml)))
    out$response_sd <- y_sd
    out$satterthwaite_unit_response <- satterthwaite(f, unit, reml, fit_unit)
  }
  vc <- as.data.frame(VarCorr(fit))
  out$varcorr <- lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[[i]], var1 = if (is.na(vc$var1[[i]])) NULL else vc$var1[[i]],
    var2 = if (is.na(vc$var2[[i]])) NULL else vc$var2[[i]],
    vcov = num(vc$vcov[[i]])[[1]], sdcor = num(vc$sdcor[[i]])[[1]]))
  out$sigma <- sigma(fit)
  theta <- getME(fit, "theta")
  out$theta_names <- I(names(theta))
  out$theta <- num(theta)
  out$ngrps <- as.list(ngrps(fit))
  out$singular <- isSingular(fit)
  opt <- fit@optinfo
  out$convergence <- list(
    optimizer = opt$optimizer, return_code = opt$conv$opt, feval = opt$feval,
    lme4_messages = I(as.character(unlist(opt$conv$lme4$messages))),
    optimizer_warnings = I(as.character(unlist(opt$warnings))))
  out$ranef <- ranef_table(fit)
  out$predict <- predictions(fit, data)
  out
}

for (case in cases) {
  started <- proc.time()[["elapsed"]]
  out <- fit_case(case)
  path <- file.path(HERE, "expected", paste0(case$id, ".json"))
  writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", na = "null",
                    pretty = 1), path)
  cat(sprintf("%-32s %6.1fs %s\n", case$id, proc.time()[["elapsed"]] - started,
              if (is.null(out$error)) "" else paste("error:", out$error)))
}
