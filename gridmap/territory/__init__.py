"""Territory: the city, districts 区, streets 街道, communities 社区, unit grids 单元网格, duty grids 责任网格."""
