# Rank-deficient fits: R's summary prints an NA row for each aliased coefficient, in its
# place. Writes tests/data/aliased.csv and tests/data/expected/aliased.json.
# Run from the repository root:  Rscript tests/data/r/aliased.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(7)
n <- 36
d <- data.frame(g = rep(c("a", "b", "c"), each = 12), x1 = round(rnorm(n), 3),
                x2 = round(runif(n, 0, 4), 3))
d$x2[d$g == "c"] <- 1.5       # constant within c: aliased with c's intercept in lmList
d$x12 <- d$x1 + d$x2          # aliased with x1 and x2 (x2 comes after it in the formulas)
d$y <- round(2 + d$x1 - 0.5 * d$x2 + rep(c(-1, 0, 1), each = 12) + rnorm(n, 0, 0.3), 3)
write.csv(d, "tests/data/aliased.csv", row.names = FALSE)

table <- function(m) {
  s <- summary(m)$coefficients
  cf <- coef(m)
  lapply(setNames(nm = names(cf)), function(term) {
    if (is.na(cf[[term]])) return(list(aliased = TRUE))
    list(aliased = FALSE, estimate = s[term, 1], std_error = s[term, 2], statistic = s[term, 3],
         p_value = s[term, 4])
  })
}
m_lm <- lm(y ~ x1 + x12 + x2 + g, d)
m_lmer <- lmer(y ~ x1 + x12 + x2 + (1 | g), d, REML = TRUE)
m_list <- lmList(y ~ x1 + x2 | g, d)
out <- list(
  r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
  lm = list(model = "y ~ x1 + x12 + x2 + g", coefficients = table(m_lm),
            aliased = I(names(which(summary(m_lm)$aliased))), df_residual = df.residual(m_lm)),
  lmer = list(model = "y ~ x1 + x12 + x2 + (1 | g)", fixef = as.list(fixef(m_lmer)),
              fixef_se = as.list(setNames(sqrt(diag(as.matrix(vcov(m_lmer)))),
                                          names(fixef(m_lmer))))),
  lmlist = list(model = "y ~ x1 + x2 | g",
                coef = lapply(split(coef(m_list), rownames(coef(m_list))), as.list)),
  new = data.frame(x1 = c(0.5, -1), x2 = c(2, 1.5), x12 = c(2.5, 0.5), g = c("a", "c")),
  predict_lm = unname(suppressWarnings(predict(m_lm, data.frame(
    x1 = c(0.5, -1), x2 = c(2, 1.5), x12 = c(2.5, 0.5), g = c("a", "c")))))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE),
           "tests/data/expected/aliased.json")
