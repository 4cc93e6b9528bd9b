# nlme's Oats with its column `yield` (a Python keyword, an ordinary name in R), written
# as tests/data/oats.csv, and lme4's fit of the model in nlme's examples, written as
# tests/data/expected/oats_nested.json. Run from the repository root:
#   Rscript tests/data/r/oats.R
suppressPackageStartupMessages({library(lme4); library(nlme); library(jsonlite)})
oats <- as.data.frame(nlme::Oats)
# plain text columns, as a CSV upload has them (nlme's Block is an ordered factor)
oats$Block <- as.character(oats$Block)
oats$Variety <- as.character(oats$Variety)
oats <- oats[, c("Block", "Variety", "nitro", "yield")]
write.csv(oats, "tests/data/oats.csv", row.names = FALSE)

formula <- yield ~ nitro * Variety + (1 | Block/Variety)
m <- lmer(formula, oats, REML = TRUE)
vc <- as.data.frame(VarCorr(m))
out <- list(
  case = "oats_nested", dataset = "oats.csv",
  formula = "yield ~ nitro * Variety + (1 | Block/Variety)", method = "REML",
  r_version = R.version.string, lme4_version = as.character(packageVersion("lme4")),
  term_labels = attr(terms(nobars(formula)), "term.labels"),
  fixef = as.list(fixef(m)),
  fixef_se = as.list(setNames(sqrt(diag(as.matrix(vcov(m)))), names(fixef(m)))),
  group_labels = names(getME(m, "flist")),
  n_groups = as.list(ngrps(m)),
  varcorr = lapply(seq_len(nrow(vc)), function(i) list(
    group = vc$grp[i], var1 = vc$var1[i], var2 = vc$var2[i], vcov = vc$vcov[i],
    sdcor = vc$sdcor[i])),
  sigma = sigma(m), reml_criterion = REMLcrit(m), n_obs = nobs(m)
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = 15, na = "null", pretty = TRUE),
           "tests/data/expected/oats_nested.json")
