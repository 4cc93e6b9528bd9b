# Time lme4's parametric bootstrap (bootMer, as confint(method = "boot") runs it) and its
# likelihood profile on one dataset, and print the times as one line of JSON.
#
# Usage: Rscript bench/lme4_intervals.R <csv> <formula> <REML|ML> <group,columns> <nsim> <seed>
#
# The bootstrap's statistic is confint's own (the sd/cor parameters, sigma, the fixed
# effects); bootMer refits with refit(), starting from the fit's theta. Reading the CSV and
# the first fit are not timed.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 6) {
  stop("usage: lme4_intervals.R <csv> <formula> <REML|ML> <group,columns> <nsim> <seed>")
}
data <- read.csv(args[[1]], stringsAsFactors = FALSE)
for (g in strsplit(args[[4]], ",", fixed = TRUE)[[1]]) data[[g]] <- factor(as.character(data[[g]]))
fit <- lmer(as.formula(args[[2]]), data = data, REML = identical(args[[3]], "REML"))
nsim <- as.integer(args[[5]])

timed <- function(expr) {
  t0 <- proc.time()
  value <- suppressWarnings(suppressMessages(expr))
  dt <- proc.time() - t0
  list(value = value, seconds = dt[["elapsed"]], cpu = dt[["user.self"]] + dt[["sys.self"]])
}
vn <- c(lme4:::profnames(fit, FALSE, useSc = TRUE), names(fixef(fit)))
statistic <- function(x) setNames(c(lme4:::Cv_to_Sv(x@theta, n = lengths(x@cnms),
                                                     s = sigma(x)), fixef(x)), vn)
set.seed(as.integer(args[[6]]))
boot <- timed(bootMer(fit, statistic, nsim = nsim))
ci <- confint(boot$value, type = "perc")
prof <- timed(confint(profile(fit, signames = FALSE)))
cat(toJSON(list(
  engine = "lme4", version = as.character(packageVersion("lme4")), nsim = nsim,
  boot_seconds = boot$seconds, boot_cpu_seconds = boot$cpu,
  seconds_per_refit = boot$seconds / nsim, failed = attr(boot$value, "bootFail"),
  boot_rows = lapply(seq_len(nrow(ci)), function(i) list(
    parm = rownames(ci)[i], lower = ci[i, 1], upper = ci[i, 2])),
  profile_seconds = prof$seconds, profile_cpu_seconds = prof$cpu
), auto_unbox = TRUE, digits = NA, null = "null"), "\n")
