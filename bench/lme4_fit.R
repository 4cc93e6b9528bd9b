# Time lme4::lmer on one benchmark dataset and print the fit as one line of JSON.
#
# Usage: Rscript bench/lme4_fit.R <csv> <formula> <REML|ML> <group,columns> <repeats> [budget]
#
# Fits up to <repeats> times, stopping early once the fits have taken <budget> seconds
# (default: no limit), and reports the fastest.
# Only the lmer() call is timed (it includes lme4's own model-frame and design building,
# as mixedfit's timing includes build_design); reading the CSV is not.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (!(length(args) %in% c(5, 6))) {
  stop("usage: lme4_fit.R <csv> <formula> <REML|ML> <group,columns> <repeats> [budget]")
}
csv <- args[[1]]
form <- as.formula(args[[2]])
reml <- identical(args[[3]], "REML")
groups <- strsplit(args[[4]], ",", fixed = TRUE)[[1]]
repeats <- as.integer(args[[5]])
budget <- if (length(args) == 6) as.numeric(args[[6]]) else Inf

data <- read.csv(csv, stringsAsFactors = FALSE)
# Grouping columns may look numeric (sleepstudy's Subject): make them factors explicitly.
for (g in groups) data[[g]] <- factor(as.character(data[[g]]))

times <- numeric(repeats)
cpu <- numeric(repeats)  # user + system: less sensitive than elapsed to a busy machine
for (i in seq_len(repeats)) {
  gc()
  t0 <- proc.time()
  fit <- lmer(form, data = data, REML = reml)
  dt <- proc.time() - t0
  times[[i]] <- dt[["elapsed"]]
  cpu[[i]] <- dt[["user.self"]] + dt[["sys.self"]]
  if (sum(times) > budget) break
}
times <- times[seq_len(i)]
cpu <- cpu[seq_len(i)]

opt <- fit@optinfo
out <- list(
  engine = "lme4",
  version = as.character(packageVersion("lme4")),
  seconds = min(times),
  all_seconds = times,
  cpu_seconds = cpu[[which.min(times)]],
  loglik = as.numeric(logLik(fit)),
  fixef = as.list(fixef(fit)),
  theta = unname(getME(fit, "theta")),
  sigma = sigma(fit),
  singular = isSingular(fit),
  optimizer = opt$optimizer,
  evaluations = opt$feval,
  messages = c(opt$conv$lme4$messages, opt$warnings)
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null"), "\n")
