# scale() and poly() are computed by model.frame on every row where their own argument is
# present, before na.omit drops rows with a missing value in another column; poly() refuses
# missing values. Writes tests/data/missing_transforms.csv and
# tests/data/expected/missing_transforms.json.  Run from the repository root:
#   Rscript tests/data/r/missing_transforms.R
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
set.seed(11)
n <- 48
d <- data.frame(g = rep(c("a", "b", "c", "d"), each = 12), x = round(rnorm(n, 5, 2), 2),
                z = round(runif(n, 0, 10), 2))
d$y <- round(1 + 0.5 * d$x - 0.1 * d$z + 0.02 * d$z^2 + rep(rnorm(4), each = 12) +
             rnorm(n, 0, 0.5), 3)
d$y[c(2, 9, 17, 30, 41)] <- NA   # rows dropped later: their x still counts for scale(x)
d$x[c(5, 22, 38)] <- NA
write.csv(d, "tests/data/missing_transforms.csv", row.names = FALSE, na = "")

coefs <- function(m) as.list(coef(m))
m1 <- lm(y ~ scale(x) + poly(z, 2), d)
m2 <- lm(scale(y) ~ x, d)
m3 <- lmer(y ~ scale(x) + (1 | g), d, REML = TRUE)
m4 <- lmList(y ~ scale(x) | g, d)
new <- data.frame(x = c(3, 5.5, 8), z = c(1, 4, 9))
poly_error <- tryCatch(lm(y ~ poly(x, 2), d), error = function(e) conditionMessage(e))
lmlist_poly_error <- tryCatch(lmList(y ~ poly(x, 2) | g, d),
                              error = function(e) conditionMessage(e))
out <- list(
  r_version = R.version.string,
  scale_center = attr(scale(d$x), "scaled:center"),
  scale_scale = attr(scale(d$x), "scaled:scale"),
  lm = list(model = "y ~ scale(x) + poly(z, 2)", n_obs = nobs(m1), coef = coefs(m1),
            predict = unname(predict(m1, new))),
  lm_response = list(model = "scale(y) ~ x", n_obs = nobs(m2), coef = coefs(m2)),
  lmer = list(model = "y ~ scale(x) + (1 | g)", n_obs = nobs(m3), fixef = as.list(fixef(m3)),
              fixef_se = as.list(setNames(sqrt(diag(as.matrix(vcov(m3)))), names(fixef(m3))))),
  lmlist = list(model = "y ~ scale(x) | g",
                coef = lapply(split(coef(m4), rownames(coef(m4))), as.list)),
  poly_error = poly_error,
  lmlist_poly_error = lmlist_poly_error,
  new = new
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/data/expected/missing_transforms.json")
