module github.com/ebb-autoscaler/ebb/e2e

go 1.26.0

replace github.com/ebb-autoscaler/ebb/pkg => ../pkg
