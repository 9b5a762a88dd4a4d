module gchttpbench

go 1.19
