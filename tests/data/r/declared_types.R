# What R 4.2.2 makes of the cells and declarations that dataset uploads mirror, written as
# tests/data/expected/declared_types.json (and the data as tests/data/declared.csv). Run
# from the repository root:
#   Rscript tests/data/r/declared_types.R
suppressPackageStartupMessages(library(jsonlite))

# 1. which spellings read.csv (type.convert) reads as logical
spellings <- c("T", "F", "TRUE", "FALSE", "true", "false", "True", "False")
logical_class <- sapply(spellings, function(s)
  class(read.csv(text = paste0("x\n", s, "\n", s, "\nNA\n"))$x))

# 2. a True/False column is a factor (levels False, True) and lm names its term flagTrue;
#    `service` holds 0/1 codes (InstEval's service) and `code` text-like numbers
declared <- data.frame(
  y = c(1.2, 2.3, 3.1, 4.8, 2.2, 5.1, 3.9, 2.7),
  flag = c("True", "False", "True", "False", "True", "False", "True", "False"),
  service = c(0, 1, 1, 0, 1, 0, 0, 1),
  code = c("10", "9", "007", "10", "9", "007", "10", "9"))
write.csv(declared, "tests/data/declared.csv", row.names = FALSE, quote = FALSE)
d <- read.csv("tests/data/declared.csv")
flag_fit <- lm(y ~ flag, d)
# declaring columns categorical at upload is read.csv's colClasses = "factor": the text as
# written is the level, levels sorted as text
f <- read.csv("tests/data/declared.csv",
              colClasses = c(service = "factor", code = "factor"))
service_fit <- lm(y ~ service + code, f)

# 3. numbers sent as numbers (JSON, Parquet) declared categorical: factor(as.character(x)),
#    doubles to 15 significant digits, integers (jsonlite's whole JSON numbers, Parquet's
#    integer columns) in full
doubles <- c(100000, 1e5 + 0.5, 0.1, 1 / 3, 123456, 2.5e-7, 1e15, 1234567890123456, -2e5)
numbers_x <- c(0.1, 1e5, 2.5e-7, 0.1, 1e5, 2.5e-7)
numbers_y <- c(1.0, 2.5, 2.0, 1.4, 3.0, 2.6)
numbers_fit <- lm(numbers_y ~ x, data.frame(numbers_y, x = factor(as.character(numbers_x))))

out <- list(
  r_version = R.version.string,
  logical_class = as.list(logical_class),
  flag_levels = levels(factor(d$flag)),
  flag_coef = as.list(coef(flag_fit)),
  declared_levels = list(service = levels(f$service), code = levels(f$code)),
  service_coef = as.list(coef(service_fit)),
  doubles = sprintf("%.17g", doubles),  # exactly, as text
  doubles_as_character = as.character(doubles),
  integers = c(100000L, -3L, 7L),
  integers_as_character = as.character(c(100000L, -3L, 7L)),
  numbers_x = numbers_x, numbers_y = numbers_y,
  numbers_coef = as.list(coef(numbers_fit))
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = I(15), pretty = TRUE),
           "tests/data/expected/declared_types.json")
