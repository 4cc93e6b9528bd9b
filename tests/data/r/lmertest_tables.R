# lmerTest's anova table of a fit as a list of rows with the JSON fields the tests read
# (sourced by inference.R and lmm_anova.R).
lmertest_anova <- function(fit, type, ddf) {
  a <- anova(fit, type = type, ddf = ddf)
  lapply(seq_len(nrow(a)), function(i) list(
    term = rownames(a)[i], sum_sq = a[i, "Sum Sq"], mean_sq = a[i, "Mean Sq"],
    num_df = a[i, "NumDF"], den_df = a[i, "DenDF"], f_value = a[i, "F value"],
    p_value = a[i, "Pr(>F)"]))
}
