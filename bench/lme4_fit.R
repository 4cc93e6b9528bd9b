# Time lme4::lmer on one benchmark dataset and print the fit as one line of JSON.
#
# Usage: Rscript bench/lme4_fit.R <csv> <formula> <REML|ML> <group,columns> <repeats>
#
# Only the lmer() call is timed (it includes lme4's own model-frame and design building,
# as mixedfit's timing includes build_design); reading the CSV is not.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 5) {
  stop("usage: lme4_fit.R <csv> <formula> <REML|ML> <group,columns> <repeats>")
}
csv <- args[[1]]
form <- as.formula(args[[2]])
reml <- identical(args[[3]], "REML")
groups <- strsplit(args[[4]], ",", fixed = TRUE)[[1]]
repeats <- as.integer(args[[5]])

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
}

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
