# How R 4.2 writes numbers as factor levels (as.character) and in term labels (deparse),
# and how factor() orders numeric values: tests/data/expected/number_labels.json.
# Run from the repository root:  Rscript tests/data/r/number_labels.R
suppressPackageStartupMessages(library(jsonlite))
set.seed(4)
special <- c(1e5, 100000.5, 123456789012, 0.1, 1e-4, 0.0001234, 1/3, 2/3, 1e15, 1e16, 123456,
             1234567, 100, 1000, 10000, 2e5, 120000, 1.5e-5, 0.00015, -1e5, 0.1 + 0.2, 1e-300,
             5e-324, .Machine$double.xmax, 12345678901234567, 123456789012345678, 1e22, 3e6,
             1200000, 0.5, 25, pi, 100000.000000001, -0.5, -2.5e-7, 99999.99999999999,
             999999999999999, 9999999999999998, 0.000123456789012345678, 1e100, 1.5e100,
             -123.456, 7, -7, 2^52 + 0.5, 2^53, 1 - 1e-15, 1 + 1e-15, 0.999999999999999,
             1e-5, 1e-15, 123.456e10, 0.1234567890123456)
magnitude <- 10^runif(150, -12, 18) * sample(c(-1, 1), 150, replace = TRUE)
digits <- signif(magnitude, sample(1:17, 150, replace = TRUE))
integers <- round(10^runif(50, 0, 17))
values <- c(special, digits, integers)
levels_of <- c(10, 9, 100, 1e5, 2.5, -1, 0.1 + 0.2, 0.3, 1e-4, 2, 20, 3)
# factor() of numeric columns in a model: R's term and column names
frame <- data.frame(y = c(2.1, 3.4, 1.9, 5.2, 4.4, 3.3, 2.8, 4.1),
                    service = c(0, 1, 1, 0, 1, 0, 0, 1),
                    dose = c(1e5, 0.5, 2, 1e5, 10, 0.5, 2, 10))
mm <- model.matrix(y ~ factor(service) + factor(dose), frame)
# read.csv reads whole numbers as integer, whose as.character is in full (100000), and
# numbers with a decimal point or exponent as doubles (1e+05)
csv <- "y,count,dose\n2.1,100000,1e5\n3.4,200000,2.5\n1.9,3,1e5\n5.2,100000,2.5\n4.4,3,30\n"
typed <- read.csv(text = csv)
mm_csv <- model.matrix(y ~ factor(count) + factor(dose), typed)
out <- list(
  r_version = R.version.string,
  # as text with 17 significant digits, which identifies every double exactly
  values = sprintf("%.17g", values),
  as_character = as.character(values),
  deparse = vapply(values, function(v) deparse(v), ""),
  factor_input = sprintf("%.17g", levels_of),
  factor_levels = levels(factor(levels_of)),
  factor_codes = as.integer(factor(levels_of)),
  model_frame = frame,
  model_term_labels = attr(terms(y ~ factor(service) + factor(dose)), "term.labels"),
  model_columns = colnames(mm),
  csv = unbox(csv),
  csv_classes = vapply(typed, class, ""),
  csv_columns = colnames(mm_csv)
)
writeLines(toJSON(out, pretty = TRUE), "tests/data/expected/number_labels.json")
