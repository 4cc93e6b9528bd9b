# R's mathematical functions and the constant pi in formulas: term labels, model.matrix
# columns and values (tests/data/expected/math_functions.json), and lme4's fit of nlme's
# Ovary model (tests/data/ovary.csv, tests/data/expected/ovary_trig.json).
# Run from the repository root:  Rscript tests/data/r/math_functions.R
suppressPackageStartupMessages({library(lme4); library(nlme); library(jsonlite)})
write_json <- function(x, path)
  writeLines(toJSON(x, auto_unbox = TRUE, digits = NA, na = "null", pretty = TRUE), path)

# x has halves (round() is half to even), zero (sign), and values inside [-1, 1] for asin
# (24 rows: more than the 19 model-matrix columns)
set.seed(20)
data <- data.frame(
  y = round(rnorm(24), 3),
  x = c(-0.5, 0.5, 1.5, -1.5, 1.75, 0, 0.25, -0.75, 0.999, -0.2, 0.7, 1.25,
        round(runif(12, -1.99, 1.99), 2)),
  Time = seq(0, 1, length.out = 24)
)
formula <- "y ~ sin(2*pi*Time) + cos(Time/24*2*pi) + tan(x) + asin(x/2) + acos(-x/3) + atan(2*x) + sinh(x) + cosh(x) + tanh(x) + floor(3*x) + ceiling(x*3) + round(x) + trunc(-x*2.50) + sign(x - 0.5) + expm1(x/2) + I(pi*x) + log(pi + x) + round(2*x)"
mm <- model.matrix(as.formula(formula), data)
write_json(list(
  case = "math_functions", r_version = R.version.string, model = formula,
  data = as.list(data),
  term_labels = attr(terms(as.formula(formula)), "term.labels"),
  columns = colnames(mm), matrix = lapply(seq_len(ncol(mm)), function(j) unname(mm[, j])),
  round = list(x = c(0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999999, 3.5000001, 1e15 + 0.5),
               value = round(c(0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999999, 3.5000001,
                               1e15 + 0.5)))
), "tests/data/expected/math_functions.json")

ovary <- as.data.frame(nlme::Ovary)
ovary$Mare <- as.integer(as.character(ovary$Mare))
ovary <- ovary[, c("Mare", "Time", "follicles")]
write.csv(ovary, "tests/data/ovary.csv", row.names = FALSE)
f <- follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1|Mare)
m <- lmer(f, ovary, REML = TRUE)
vc <- as.data.frame(VarCorr(m))
write_json(list(
  case = "ovary_trig", dataset = "ovary.csv",
  formula = "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1|Mare)", method = "REML",
  r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
  term_labels = attr(terms(nobars(f)), "term.labels"),
  fixef = as.list(fixef(m)),
  fixef_se = as.list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fixef(m)))),
  n_groups = as.list(ngrps(m)),
  varcorr = lapply(seq_len(nrow(vc)), function(i) list(
    group = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i], vcov = vc$vcov[i],
    sdcor = vc$sdcor[i])),
  sigma = sigma(m), reml_criterion = REMLcrit(m), n_obs = nobs(m)
), "tests/data/expected/ovary_trig.json")
