# Per-group fits, pooled and not: summary(lmList(...)) pools the residual SD by default
# (pool = TRUE: SE scaled by pooledSD/sigma, t on the pooled df), confint(..., pool = TRUE)
# uses the pooled SD and df. Writes tests/data/expected/lmlist_pool.json.
# Run from the repository root:  Rscript tests/data/r/lmlist_pool.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
tables <- function(m, pool) {
  s <- summary(m, pool = pool)
  ci <- confint(m, pool = pool)   # lmList4.confint: level x (lower, upper) x term
  groups <- dimnames(s$coefficients)[[1]]
  lapply(setNames(nm = groups), function(g) {
    cf <- s$coefficients[g, , ]
    terms <- colnames(cf)
    lapply(setNames(nm = terms), function(term) {
      if (is.na(cf[1, term])) return(list(aliased = TRUE))
      list(aliased = FALSE, estimate = cf[1, term], std_error = cf[2, term],
           statistic = cf[3, term], p_value = cf[4, term],
           conf_low = ci[g, 1, term], conf_high = ci[g, 2, term])
    })
  })
}
case <- function(formula, data) {
  m <- lmList(formula, data)
  pooled <- lme4:::pooledSD(m)
  list(formula = deparse(formula), pooled_sd = c(pooled), pooled_df = attr(pooled, "df"),
       pooled = tables(m, TRUE), unpooled = tables(m, FALSE))
}
mood <- read.csv("tests/data/mood.csv")
aliased <- read.csv("tests/data/aliased.csv")
out <- list(
  r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
  mood = case(Mood ~ Exercise | State, mood),
  # group c's x2 is constant (aliased): pooledSD counts its NA coefficient in
  # length(coef(el)), so the pooled df is n - 9, not n - 8
  aliased = case(y ~ x1 + x2 | g, aliased)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           "tests/data/expected/lmlist_pool.json")
