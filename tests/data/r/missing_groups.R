# What R does with rows R numbers and groups that are missing, written as
# tests/data/expected/missing_groups.json. Run from the repository root:
#   Rscript tests/data/r/missing_groups.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
mood <- read.csv("tests/data/mood.csv")

# 1. predictions for rows whose grouping value is missing (NA)
m <- lmer(Mood ~ Exercise + (1 + Exercise | State), mood)  # REML, as POST /v1/models
new <- data.frame(Exercise = c(1, 1, 2.5, 4), State = c(NA, "A", NA, "C"))
population <- predict(m, new, allow.new.levels = TRUE)   # NA rows: population level
refused <- tryCatch(predict(m, new), error = conditionMessage)
fixed_only <- predict(m, new, re.form = NA)
# a per-group model has no population regression
by_state <- lmList(Mood ~ Exercise | State, mood)
by_state_refused <- tryCatch(predict(by_state, new), error = conditionMessage)

# 2. residuals are named by the data's row names (1-based), gaps where rows were dropped
holed <- mood
holed$Exercise[c(2, 5)] <- NA
fit <- lm(Mood ~ Exercise, holed)

out <- list(
  r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
  formula = "Mood ~ Exercise + (1 + Exercise | State)",
  new = list(Exercise = new$Exercise, State = new$State),
  population = unname(population),
  refused = refused,
  fixed_only = unname(fixed_only),
  by_group_refused = by_state_refused,
  dropped_rows = c(2, 5),
  residual_names = as.integer(names(residuals(fit))[1:6]),
  n_residuals = length(residuals(fit))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), na = "null", pretty = TRUE),
           "tests/data/expected/missing_groups.json")
